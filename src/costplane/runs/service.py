"""What runs and outcomes contribute to the server: the SLO gate and job (the run, outcome, SLO
and OTLP endpoints are declared in the route table: runs/api.py, otel/receiver.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.routing import BaseRoute

from costplane.app import Application
from costplane.core.notify import Notification
from costplane.core.slo import SloGate, SloMonitor

__all__ = ["SLO_INTERVAL", "runs_parts"]

#: seconds between SLO evaluations
SLO_INTERVAL = 5.0


class _CoreNotifier:
    """The core's notifier at notification time (alert webhooks are composed into it after this part)."""

    def __init__(self, application: Application) -> None:
        self._application = application

    def notify(self, notification: Notification) -> None:
        self._application.core.notifier.notify(notification)


def runs_parts(application: Application, slo_interval: float = SLO_INTERVAL) -> tuple[
        list[BaseRoute], list[tuple[float, Callable[[], Awaitable[object]]]]]:
    """Routes and background jobs; also installs the SLO gate on the application's decision core."""
    gate = SloGate(application.store)
    application.core.slo_gate = gate
    monitor = SloMonitor(application.store, lambda: application.bundle.engine, _CoreNotifier(application))

    async def evaluate() -> object:
        states = await asyncio.to_thread(monitor.evaluate)
        gate.refresh()
        return states

    return [], [(slo_interval, evaluate)]
