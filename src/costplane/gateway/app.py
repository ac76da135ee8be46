"""The gateway's ASGI app: governed OpenAI- and Anthropic-compatible routes on one Application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from costplane.app import Application
from costplane.auth.authenticator import request_secret
from costplane.gateway.endpoints import ANTHROPIC_MESSAGES, OPENAI_CHAT, OPENAI_EMBEDDINGS
from costplane.gateway.errors import error_response
from costplane.gateway.proxy import GovernedProxy
from costplane.gateway.upstream import AiohttpTransport, UpstreamError, UpstreamTransport
from costplane.ledger.executor import StoreExecutor
from costplane.otel.export import span_exporter

__all__ = ["create_gateway"]

log = logging.getLogger("costplane.gateway")


def create_gateway(
    application: Application,
    transport: UpstreamTransport | None = None,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    background: Sequence[tuple[float, Callable[[], Awaitable[object]]]] = (),
) -> Starlette:
    """The gateway app. `extra_routes` (API, receivers) are served by the same app, and each
    (seconds, job) of `background` runs every `seconds` while it serves (schedulers)."""
    settings = application.config.gateway
    transport = transport or AiohttpTransport()
    store = StoreExecutor(application.store)
    proxy = GovernedProxy(application.core, application.auth, transport, settings.max_request_bytes,
                          float(settings.upstream_timeout), store,
                          spans=span_exporter(application.config.telemetry))  # None unless telemetry.otlp_endpoint

    async def chat(request: Request) -> Response:
        return await proxy.handle(OPENAI_CHAT, request)

    async def embeddings(request: Request) -> Response:
        return await proxy.handle(OPENAI_EMBEDDINGS, request)

    async def messages(request: Request) -> Response:
        return await proxy.handle(ANTHROPIC_MESSAGES, request)

    async def models(request: Request) -> Response:
        # the application's one authenticator: reads the credential generation, so run like any store call
        if await store.run(application.auth.key, request_secret(request.headers)) is None:
            return error_response("openai", 401, "invalid_api_key", "missing, unknown, expired or revoked key")
        seen: dict[str, dict[str, object]] = {}
        for provider in application.config.providers:
            if provider.protocol != "openai":
                continue
            try:
                response = await transport.get(provider.base_url + "/models",
                                               {"authorization": f"Bearer {provider.api_key() or 'costplane'}"}, 10.0)
                listing = orjson.loads(await response.read()) if response.status == 200 else {}
            except (UpstreamError, orjson.JSONDecodeError) as exc:
                log.warning("listing models of provider %s failed: %s", provider.name, exc)
                listing = {}
            for item in listing.get("data", []) if isinstance(listing, dict) else []:
                model_id = item.get("id") if isinstance(item, dict) else None
                if isinstance(model_id, str) and provider.serves(model_id):
                    seen.setdefault(model_id, {"id": model_id, "object": "model", "created": item.get("created", 0),
                                               "owned_by": provider.name})
            for alias in provider.aliases:
                seen.setdefault(alias, {"id": alias, "object": "model", "created": 0, "owned_by": provider.name})
        return JSONResponse({"object": "list", "data": sorted(seen.values(), key=lambda m: str(m["id"]))})

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
            await asyncio.to_thread(proxy.calls.flush)  # the call ids still queued (counted once)
            store.close()
            if proxy.spans is not None:  # export what is queued, off the event loop
                await asyncio.to_thread(proxy.spans.close)

    routes = [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
        *extra_routes,
    ]
    return Starlette(routes=routes, lifespan=lifespan)


async def _every(seconds: float, job: Callable[[], Awaitable[object]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except Exception:  # a periodic job must never kill the loop; it logs and tries again
            log.exception("periodic job failed")
