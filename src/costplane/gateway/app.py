"""The gateway's ASGI app: the governed routes of every registered protocol adapter on one Application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from costplane.app import Application
from costplane.auth.authenticator import request_secret
from costplane.gateway.errors import error_response
from costplane.gateway.models import model_listing
from costplane.gateway.protocols import ADAPTERS
from costplane.gateway.protocols.base import Incoming, ProtocolAdapter, ResponseLookup
from costplane.gateway.protocols.openai_responses import StoreResponseLookup
from costplane.gateway.proxy import GovernedProxy
from costplane.gateway.routes import adapter_for_path, adapter_routes, path_error_handler
from costplane.gateway.upstream import AiohttpTransport, UpstreamTransport
from costplane.ledger.executor import StoreExecutor
from costplane.ledger.leases import LeasedLedger
from costplane.otel.export import span_exporter

__all__ = ["create_gateway"]

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
    store = StoreExecutor(application.store)
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
            if isinstance(application.ledger, LeasedLedger):  # apply its journal, give its leases back
                await asyncio.to_thread(application.ledger.close)
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
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: unknown, 405: unknown})


async def _every(seconds: float, job: Callable[[], Awaitable[object]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except Exception:  # a periodic job must never kill the loop; it logs and tries again
            log.exception("periodic job failed")
