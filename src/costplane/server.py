"""The whole server: the governed gateway plus every API and background job of the product.

`costplane serve` runs `create_server`. Each package that serves HTTP or runs on a schedule
contributes here, so the gateway module stays about the gateway.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from costplane.app import Application
from costplane.gateway.app import create_gateway

__all__ = ["create_server"]


def create_server(application: Application) -> Starlette:
    routes: list[BaseRoute] = []
    background: list[tuple[float, Callable[[], Awaitable[object]]]] = []
    return create_gateway(application, extra_routes=routes, background=background)
