"""Wire lifecycle governance into a server: the environment core and the scheduler job (the
/v1/environments endpoints are declared in the route table, see lifecycle/machine.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.routing import BaseRoute

from costplane.app import Application
from costplane.core.environments import EnvironmentCore
from costplane.lifecycle.leadership import Leadership
from costplane.lifecycle.scheduler import Scheduler

__all__ = ["TICK_SECONDS", "build_core", "lifecycle_parts", "state_dir"]

TICK_SECONDS = 0.5


def state_dir(application: Application) -> Path:
    """Where drivers keep logs and terraform workspaces: next to costplane.yaml (or the working dir)."""
    return application.state_dir


def build_core(application: Application) -> EnvironmentCore:
    """The application's one environment core (built by the composition root with its notifier)."""
    return application.environments


def lifecycle_parts(application: Application, core: EnvironmentCore) -> tuple[
        list[BaseRoute], list[tuple[float, Callable[[], Awaitable[object]]]]]:
    """No routes of its own (the route table serves /v1/environments) and the scheduler's (seconds, job)
    for `create_gateway`, over `core` (built once by the server with `build_core`, shared with the table)."""
    scheduler = Scheduler(core, Leadership(application.config.store_url))
    running: list[asyncio.Future[int]] = []

    async def tick() -> object:
        if running and not running[0].done():  # a slow pass is never run twice at once
            return None
        running.clear()
        future = asyncio.ensure_future(asyncio.to_thread(scheduler.tick))
        running.append(future)
        return await future

    return [], [(TICK_SECONDS, tick)]
