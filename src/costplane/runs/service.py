"""What runs and outcomes contribute to the server: the SLO gate and job (the run, outcome, SLO
and OTLP endpoints are declared in the route table: runs/api.py, otel/receiver.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.routing import BaseRoute

from costplane.app import Application
from costplane.core.slo import SloMonitor

__all__ = ["SLO_INTERVAL", "runs_parts"]

#: seconds between SLO evaluations
SLO_INTERVAL = 5.0


def runs_parts(application: Application, slo_interval: float = SLO_INTERVAL) -> tuple[
        list[BaseRoute], list[tuple[float, Callable[[], Awaitable[object]]]]]:
    """Routes and background jobs: the SLO monitor refreshes the application's SLO gate (the one its
    decision core was built with) and notifies through the application's notifier (webhooks included)."""
    gate = application.slo_gate
    monitor = SloMonitor(application.store, lambda: application.bundle.engine, application.notifier,
                         decider=application.core.decider)

    async def evaluate() -> object:
        states = await asyncio.to_thread(monitor.evaluate)
        gate.refresh()
        return states

    return [], [(slo_interval, evaluate)]
