"""The declarative route table: each endpoint's method, path, summary, typed parameters, roles
and response schema. The server dispatches from it and the OpenAPI document is generated from
it, so the two cannot drift; a query parameter the table does not declare is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from costplane.api.errors import ApiError
from costplane.api.principal import Principal

__all__ = ["Call", "Endpoint", "Handler", "Param", "WithStatus", "invoke", "parse_params"]

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: str  # string | integer | date-time | list (comma-separated strings)
    description: str
    location: str = "query"  # query | path
    required: bool = False
    enum: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    default: int | None = None

    def schema(self) -> Json:
        if self.type == "integer":
            out: Json = {"type": "integer"}
            for key, value in (("minimum", self.minimum), ("maximum", self.maximum), ("default", self.default)):
                if value is not None:
                    out[key] = value
            return out
        if self.type == "date-time":
            return {"type": "string", "format": "date-time"}
        if self.type == "list":
            items: Json = {"type": "string", "enum": list(self.enum)} if self.enum else {"type": "string"}
            return {"type": "array", "items": items}
        return {"type": "string", "enum": list(self.enum)} if self.enum else {"type": "string"}


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the caller, the parsed parameters and the JSON body (if any)."""

    principal: Principal
    params: Mapping[str, Any]
    body: Any = None


class WithStatus(dict[str, Any]):
    """A handler's result served with another success status than the endpoint's (e.g. 202 for a
    launch that waits for approval); still a plain dict for callers such as the dashboard."""

    def __init__(self, status: int, body: Json) -> None:
        super().__init__(body)
        self.status = status


Handler = Callable[[Call], Awaitable[Json]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str  # /api/v1/... with {name} path parameters
    operation_id: str
    summary: str
    roles: tuple[str, ...]  # () = public, no token needed
    response: Json  # JSON schema of the success body
    handler: Handler | None = None  # None: served specially (the OpenAPI document itself)
    params: tuple[Param, ...] = ()
    body: Json | None = None  # JSON schema of the request body
    status: int = 200
    description: str = ""
    tags: tuple[str, ...] = field(default=())


def _parse_one(param: Param, raw: str) -> Any:
    if param.type == "integer":
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, "invalid_parameter", f"{param.name}: expected an integer, got {raw!r}",
                           param.name) from None
        if (param.minimum is not None and value < param.minimum) or (
                param.maximum is not None and value > param.maximum):
            raise ApiError(400, "invalid_parameter",
                           f"{param.name}: must be between {param.minimum} and {param.maximum}, got {value}",
                           param.name)
        return value
    if param.type == "date-time":
        try:
            when = datetime.fromisoformat(raw)
        except ValueError:
            raise ApiError(400, "invalid_parameter", f"{param.name}: expected an ISO 8601 time such as "
                           f"2026-11-22T00:00:00Z, got {raw!r}", param.name) from None
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    if param.type == "list":
        values = tuple(dict.fromkeys(v.strip() for v in raw.split(",") if v.strip()))
        bad = [v for v in values if param.enum and v not in param.enum]
        if bad:
            raise ApiError(400, "invalid_parameter", f"{param.name}: unknown value {bad[0]!r}; expected some of "
                           f"{', '.join(param.enum)}", param.name)
        return values
    if param.enum and raw not in param.enum:
        raise ApiError(400, "invalid_parameter", f"{param.name}: expected one of {', '.join(param.enum)}, got "
                       f"{raw!r}", param.name)
    return raw


def parse_params(endpoint: Endpoint, query: Mapping[str, str], path: Mapping[str, str]) -> dict[str, Any]:
    """Typed parameters of one request, exactly as the table declares them."""
    declared = {p.name for p in endpoint.params if p.location == "query"}
    for name in query:
        if name not in declared:
            raise ApiError(400, "unknown_parameter", f"{name}: not a parameter of {endpoint.method} {endpoint.path}"
                           f" (see /api/v1/openapi.json)", name)
    out: dict[str, Any] = {}
    for param in endpoint.params:
        raw = (query if param.location == "query" else path).get(param.name)
        if raw is None or raw == "":
            if param.required:
                raise ApiError(400, "missing_parameter", f"{param.name}: required", param.name)
            out[param.name] = param.default
            continue
        out[param.name] = _parse_one(param, raw)
    return out


async def invoke(endpoint: Endpoint, principal: Principal, query: Mapping[str, str], path: Mapping[str, str],
                 body: Any = None) -> Json:
    """Check the caller's role, parse the parameters and run the handler: the one way an endpoint is called,
    whether by the HTTP API or by the dashboard."""
    if principal.role not in endpoint.roles:
        raise ApiError(403, "forbidden_role", f"role {principal.role!r} may not call {endpoint.method} "
                       f"{endpoint.path} (allowed: {', '.join(endpoint.roles)})", "authorization")
    if endpoint.handler is None:
        raise ApiError(404, "not_callable", f"{endpoint.operation_id} is served specially")
    params = parse_params(endpoint, query, path)
    return await endpoint.handler(Call(principal, params, body))
