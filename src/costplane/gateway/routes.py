"""The gateway's protocol routes, built from the adapter registry, and the errors of every other
path under a protocol's prefix (in that protocol's error shape, naming what is served)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, Route

from costplane.gateway.errors import error_response
from costplane.gateway.protocols.base import AdapterRoute, ProtocolAdapter

__all__ = ["adapter_for_path", "adapter_routes", "direct_routes", "path_error_handler", "served_endpoints"]

Handler = Callable[[ProtocolAdapter, AdapterRoute, Request], Awaitable[Response]]
#: routes the gateway serves itself under the OpenAI prefix
EXTRA_SERVED = ("GET /v1/models",)


def adapter_routes(adapters: Sequence[ProtocolAdapter], handle: Handler) -> list[Route]:
    """One Starlette route per adapter route, in registry order."""
    routes: list[Route] = []
    for adapter in adapters:
        for spec in adapter.routes:
            routes.append(Route(spec.path, _endpoint(handle, adapter, spec), methods=[spec.method],
                                name=f"{adapter.name}:{spec.operation}"))
    return routes


def direct_routes(adapters: Sequence[ProtocolAdapter],
                  routes: Sequence[BaseRoute]) -> dict[tuple[str, str], Callable[[Request], Awaitable[Response]]]:
    """(method, path) -> endpoint of every governed adapter route with a fixed path (no path
    parameters) that the router would pick for exactly that method and path (the first route of
    `routes` to match it fully): what the gateway dispatches without the router (`GatewayApp`).
    Every other request stays with the router."""
    governed = {f"{a.name}:{spec.operation}" for a in adapters for spec in a.routes
                if spec.governed and "{" not in spec.path}
    out: dict[tuple[str, str], Callable[[Request], Awaitable[Response]]] = {}
    for route in routes:
        if not isinstance(route, Route) or route.name not in governed:
            continue
        for method in sorted(route.methods or ()):
            scope = {"type": "http", "path": route.path, "method": method}
            first = next(r for r in routes if r.matches(scope)[0] is Match.FULL)
            if first is route:
                out.setdefault((method, route.path), route.endpoint)
    return out


def _endpoint(handle: Handler, adapter: ProtocolAdapter,
              spec: AdapterRoute) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await handle(adapter, spec, request)

    return endpoint


def _prefix(adapter: ProtocolAdapter, path: str) -> int:
    return max((len(p) for p in adapter.path_prefixes if path.startswith(p)), default=-1)


def adapter_for_path(adapters: Sequence[ProtocolAdapter], path: str, headers: dict[str, str]) -> ProtocolAdapter | None:
    """The adapter whose error shape a request to `path` expects: the longest matching prefix, then
    the one whose signature header the client sent, then registry order."""
    scored = [(_prefix(a, path), any(h in headers for h in a.signature_headers), -i, a)
              for i, a in enumerate(adapters) if _prefix(a, path) >= 0]
    if not scored:
        return None
    return max(scored, key=lambda item: item[:3])[3]


def served_endpoints(adapters: Sequence[ProtocolAdapter], path: str) -> list[str]:
    """`METHOD path` of every route under the prefixes `path` falls under."""
    out: list[str] = []
    for adapter in adapters:
        if _prefix(adapter, path) < 0:
            continue
        out.extend(f"{r.method} {r.path}" for r in adapter.routes if f"{r.method} {r.path}" not in out)
    if path.startswith("/v1/"):
        out.extend(e for e in EXTRA_SERVED if e not in out)
    return out


def path_error_handler(adapters: Sequence[ProtocolAdapter]) -> Callable[[Request, Exception], Awaitable[Response]]:
    """404/405 answers: in the path family's error shape under a protocol prefix, plain elsewhere."""

    async def handler(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        path = request.url.path
        adapter = adapter_for_path(adapters, path, dict(request.headers))
        if adapter is None:
            detail = exc.detail if isinstance(exc, HTTPException) else "Internal Server Error"
            headers = exc.headers if isinstance(exc, HTTPException) else None
            return PlainTextResponse(detail, status_code=status, headers=headers)
        served = ", ".join(served_endpoints(adapters, path))
        if status == 405:
            given = exc.headers or {} if isinstance(exc, HTTPException) else {}
            allowed = next((v for k, v in given.items() if k.lower() == "allow"), "")
            message = (f"{request.method} is not served at {path} (allowed: {allowed or 'none'}); "
                       f"this gateway serves {served}")
            response = error_response(adapter, 405, "method_not_allowed", message, param="method")
            if allowed:
                response.headers["allow"] = allowed
            return response
        message = f"{request.method} {path} is not an endpoint of this gateway; it serves {served}"
        return error_response(adapter, 404, "unknown_path", message, param="path")

    return handler
