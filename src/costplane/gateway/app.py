"""The gateway's ASGI app: the governed routes of every registered protocol adapter on one Application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, ExceptionHandler, Receive, Scope, Send

from costplane.app import Application
from costplane.auth.authenticator import request_secret
from costplane.gateway.errors import error_response
from costplane.gateway.models import model_listing
from costplane.gateway.protocols import ADAPTERS
from costplane.gateway.protocols.base import Incoming, ProtocolAdapter, ResponseLookup
from costplane.gateway.protocols.openai_responses import StoreResponseLookup
from costplane.gateway.proxy import GovernedProxy
from costplane.gateway.routes import adapter_for_path, adapter_routes, direct_routes, path_error_handler
from costplane.gateway.upstream import AiohttpTransport, UpstreamTransport
from costplane.ledger.executor import StoreExecutor
from costplane.ledger.open import close_budget_ledger, grouped_writes
from costplane.otel.export import span_exporter

__all__ = ["GatewayApp", "create_gateway"]

log = logging.getLogger("costplane.gateway")


def create_gateway(
    application: Application,
    transport: UpstreamTransport | None = None,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    background: Sequence[tuple[float, Callable[[], Awaitable[object]]]] = (),
    adapters: Sequence[ProtocolAdapter] = ADAPTERS,
    lookup: ResponseLookup | None = None,
) -> Starlette:
    """The gateway app. `extra_routes` (API, receivers) are served by the same app, and each
    (seconds, job) of `background` runs every `seconds` while it serves (schedulers). `adapters`:
    the protocols served (the registry); `lookup`: the responses the gateway metered, by id (by
    default read from the cost events)."""
    settings = application.config.gateway
    transport = transport or AiohttpTransport()
    store = StoreExecutor(application.store, grouped=grouped_writes(application.ledger))
    proxy = GovernedProxy(application.core, application.auth, transport, settings.max_request_bytes,
                          float(settings.upstream_timeout), store,
                          spans=span_exporter(application.config.telemetry),  # None unless telemetry.otlp_endpoint
                          lookup=lookup if lookup is not None else StoreResponseLookup(application.store))

    async def models(request: Request) -> Response:
        headers = dict(request.headers)
        adapter = adapter_for_path(adapters, request.url.path, headers) or adapters[0]
        secret = adapter.credential(Incoming("GET", request.url.path, {}, dict(request.query_params), headers, b""))
        # the application's one authenticator: reads the credential generation, so run like any store call
        if await store.run(application.auth.key, secret or request_secret(request.headers)) is None:
            return error_response(adapter, 401, "invalid_api_key", "missing, unknown, expired or revoked key")
        family = request.query_params.get("family") or adapter.family
        families = sorted({p.protocol for p in application.config.providers} | {a.family for a in adapters})
        if family not in families:
            return error_response(adapter, 400, "invalid_request",
                                  f"family query parameter: expected one of {', '.join(families)}, got {family!r}",
                                  param="family")
        return JSONResponse(await model_listing(application.config.providers, family, transport, log))

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "bundle_revision": application.bundle.revision,
                             "open_reservations": application.store.open_reservations()})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if proxy.spans is not None:
            proxy.spans.start()
        expired = application.core.expire_reservations()
        if expired:
            log.warning("released %d stale reservations at start-up", expired)
        tasks = [
            asyncio.create_task(_every(5.0, lambda: store.run(application.core.expire_reservations))),
            asyncio.create_task(_every(2.0, proxy.background.sweep)),  # background responses that finished
            # loading a bundle reads files and may ask git: keep it off the event loop
            asyncio.create_task(_every(float(settings.reload_interval),
                                       lambda: asyncio.to_thread(application.reload_if_changed))),
            *(asyncio.create_task(_every(seconds, job)) for seconds, job in background),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await transport.close()
            store.close()
            # apply a lease ledger's journal, give its leases back, stop the loop feed
            await asyncio.to_thread(close_budget_ledger, application.ledger)
            if proxy.spans is not None:  # export what is queued, off the event loop
                await asyncio.to_thread(proxy.spans.close)

    routes = [
        *adapter_routes(adapters, proxy.handle),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1beta/models", models, methods=["GET"]),  # Gemini's own listing path
        Route("/healthz", health, methods=["GET"]),
        *extra_routes,
    ]
    unknown = path_error_handler(adapters)
    return GatewayApp(direct_routes(adapters, routes), routes=routes, lifespan=lifespan,
                      exception_handlers={404: unknown, 405: unknown})


class GatewayApp(Starlette):
    """The gateway's Starlette app, except that a request to a governed route with a fixed path
    (POST /v1/chat/completions, ...) goes straight to its endpoint instead of through the router's
    route matching and per-route wrappers. It keeps everything around the router: the 500 answer
    of an unexpected error, and every middleware added (`add_middleware`: the latency histograms).
    Every other request — other paths, other methods, a mounted root path — goes to the router."""

    def __init__(self, direct: Mapping[tuple[str, str], Callable[[Request], Awaitable[Response]]],
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.direct = dict(direct)

    def build_middleware_stack(self) -> ASGIApp:
        error_handler = None
        handlers: dict[Any, ExceptionHandler] = {}
        for key, value in self.exception_handlers.items():
            if key in (500, Exception):
                error_handler = value
            else:
                handlers[key] = value
        routed = ExceptionMiddleware(self.router, handlers=handlers, debug=self.debug)
        app: ASGIApp = _DirectDispatch(self.direct, routed)
        middleware = [Middleware(ServerErrorMiddleware, handler=error_handler, debug=self.debug)]
        if self.max_body_size is not None:
            middleware.append(Middleware(RequestBodyLimitMiddleware, max_body_size=self.max_body_size))
        for cls, args, kwargs in reversed([*middleware, *self.user_middleware]):
            app = cls(app, *args, **kwargs)
        return app


class _DirectDispatch:
    """(method, path) -> endpoint for the governed fixed paths; the router for everything else."""

    def __init__(self, direct: Mapping[tuple[str, str], Callable[[Request], Awaitable[Response]]],
                 routed: ASGIApp) -> None:
        self.direct = direct
        self.routed = routed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            endpoint = self.direct.get((scope["method"], scope["path"]))
            if endpoint is not None:
                response = await endpoint(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await self.routed(scope, receive, send)


async def _every(seconds: float, job: Callable[[], Awaitable[object]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except Exception:  # a periodic job must never kill the loop; it logs and tries again
            log.exception("periodic job failed")
