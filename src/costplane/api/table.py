"""The declarative route table: each endpoint's method, path, summary, typed parameters, roles,
scoping rule and response schema — for the users' API (/api/v1) and the machine API (/v1). The
server dispatches from it and the OpenAPI document is generated from it, so the two cannot
drift; a query parameter the table does not declare is refused, an empty typed one too.

Every endpoint declares ONE scoping rule (`Scoping`), applied by `invoke`:

* `public` — no credential, no tenant data (the OpenAPI document);
* `self` — only the caller's own identity (whoami);
* `config` — declared configuration every role may read (blueprints);
* `global` — unscoped callers only (admin; a scoped caller is 403);
* `rows` — the handler returns only rows the caller's scope covers (`Principal.may_read/covers`);
* `resource` — the path names one resource; `owner` gives its attribution and the dispatcher
  answers 404 (exactly like an unknown one) unless the caller's scope covers all of it;
* `attribution` — the call writes attributed data (launch, ingest, outcomes, traces): a key's
  bound attributes override the payload, and the handler checks what is written with
  `check_attribution` — a scoped key may not name an org/team/project it does not bind, a user
  only teams and projects of their scope: 403 naming the field otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from costplane.api.errors import ApiError
from costplane.api.principal import Principal

__all__ = [
    "RULES",
    "Call",
    "Endpoint",
    "Handler",
    "Param",
    "Scoping",
    "Served",
    "WithStatus",
    "check_attribution",
    "invoke",
    "parse_params",
]

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
    body: Any = None  # parsed JSON, or the raw bytes for an endpoint with `raw_body`
    headers: Mapping[str, str] = field(default_factory=dict)


class WithStatus(dict[str, Any]):
    """A handler's result served with another success status than the endpoint's (e.g. 202 for a
    launch that waits for approval); still a plain dict for callers such as the dashboard."""

    def __init__(self, status: int, body: Json) -> None:
        super().__init__(body)
        self.status = status


class Served(dict[str, Any]):
    """A handler's own HTTP response (e.g. OTLP protobuf), passed through by the dispatcher."""

    def __init__(self, response: Any) -> None:
        super().__init__()
        self.response = response


Handler = Callable[[Call], Awaitable[Json]]
Owner = Callable[[Call], Sequence[Mapping[str, str | None]] | None]
RULES: tuple[str, ...] = ("public", "self", "config", "global", "rows", "resource", "attribution")


@dataclass(frozen=True, slots=True)
class Scoping:
    """The one scoping rule of an endpoint (see the module docstring)."""

    rule: str
    note: str = ""
    owner: Owner | None = None  # resource: the attribution(s) of the path's resource, None when unknown
    field: str = ""  # resource: the path parameter a 404 names
    code: str = "not_found"  # resource: the error code of a 404


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
    scoping: Scoping | None = None  # None = undeclared: the server refuses to build such a table
    raw_body: bool = False  # the handler gets the body's bytes (OTLP protobuf/JSON), not parsed JSON
    max_body: int = 4 * 1024 * 1024


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
        if raw == "" and param.location == "query" and param.type != "string":
            raise ApiError(400, "invalid_parameter", f"{param.name}: empty; give a value or leave the parameter out",
                           param.name)
        if raw is None or raw == "":
            if param.required:
                raise ApiError(400, "missing_parameter", f"{param.name}: required", param.name)
            out[param.name] = param.default
            continue
        out[param.name] = _parse_one(param, raw)
    return out


def check_attribution(principal: Principal, values: Mapping[str, Any], where: str = "") -> None:
    """Rule `attribution`: 403 naming the field when the caller may not write data attributed to
    `values` (a key bound to a team/project cannot name another; a user only their teams/projects)."""
    name = principal.foreign_attribution({k: (None if v is None else str(v)) for k, v in values.items()})
    if name is not None:
        field_name = f"{where}{name}"
        value = values.get(name)
        mine = (", ".join(f"{k}={v}" for k, v in principal.bound.items()) if principal.key is not None
                else ", ".join((principal.teams or ()) + (principal.projects or ())))
        raise ApiError(403, "forbidden_scope", f"{field_name}: you may not attribute to {name} {value!r} "
                       f"(your scope: {mine or 'none'})", field_name)


async def _apply_scoping(endpoint: Endpoint, call: Call) -> None:
    scoping = endpoint.scoping
    if scoping is None:
        raise ApiError(403, "no_scoping_rule", f"{endpoint.method} {endpoint.path} declares no scoping rule",
                       "authorization")
    principal = call.principal
    if scoping.rule == "global" and principal.scope is not None:
        raise ApiError(403, "forbidden_scope", f"{endpoint.method} {endpoint.path} needs an unscoped caller",
                       "authorization")
    if scoping.rule == "resource" and scoping.owner is not None:
        owner = scoping.owner
        owners = await run_in_threadpool(lambda: owner(call))
        name = scoping.field
        if not owners or not all(principal.covers(o) for o in owners):  # another team's = unknown: not leaked
            raise ApiError(404, scoping.code, f"{name}: no {name.removesuffix('_id')} {call.params.get(name)!r}",
                           name)


async def invoke(endpoint: Endpoint, principal: Principal, query: Mapping[str, str], path: Mapping[str, str],
                 body: Any = None, headers: Mapping[str, str] | None = None) -> Json:
    """Check the caller's role, parse the parameters, apply the endpoint's scoping rule and run the
    handler: the one way an endpoint is called, whether by the HTTP APIs or by the dashboard."""
    if principal.role not in endpoint.roles:
        raise ApiError(403, "forbidden_role", f"role {principal.role!r} may not call {endpoint.method} "
                       f"{endpoint.path} (allowed: {', '.join(endpoint.roles)})", "authorization")
    if endpoint.handler is None:
        raise ApiError(404, "not_callable", f"{endpoint.operation_id} is served specially")
    params = parse_params(endpoint, query, path)
    call = Call(principal, params, body, dict(headers or {}))
    await _apply_scoping(endpoint, call)
    return await endpoint.handler(call)
