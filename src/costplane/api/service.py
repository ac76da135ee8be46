"""The /api/v1 routes: the route table, bearer-token authentication, role checks and dispatch.

Every endpoint is declared once in `endpoints()`; `api_routes` serves exactly that table and
`GET /api/v1/openapi.json` renders it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from costplane.api import budgets, decisions, keys, spend
from costplane.api.credentials import token_user
from costplane.api.errors import ApiError, error_response
from costplane.api.openapi import openapi_document
from costplane.api.principal import ALL_ROLES, Principal
from costplane.api.table import Call, Endpoint, Param, parse_params
from costplane.app import Application
from costplane.ledger.store import Store

__all__ = ["api_routes", "endpoints"]

_WHOAMI = {"type": "object", "required": ["user", "role"], "properties": {
    "user": {"type": "string"}, "id": {"type": "string"}, "role": {"type": "string"},
    "teams": {"type": ["array", "null"], "items": {"type": "string"},
              "description": "null = every team (admin, finance)"}, "token_id": {"type": "string"}}}


async def _whoami(call: Call) -> dict[str, Any]:
    p = call.principal
    return {"user": p.user.name, "id": p.user.id, "role": p.role,
            "teams": list(p.teams) if p.teams is not None else None, "token_id": p.token_id}


def endpoints(application: Application) -> tuple[Endpoint, ...]:
    """The one route table of the API."""
    store = application.store
    return (
        Endpoint("GET", "/api/v1/openapi.json", "openapi", "This OpenAPI 3.1 document", (),
                 {"type": "object"}, tags=("meta",)),
        Endpoint("GET", "/api/v1/whoami", "whoami", "The calling user, role and team scope", ALL_ROLES,
                 _WHOAMI, _whoami, tags=("meta",)),
        Endpoint("GET", "/api/v1/spend", "spend", "Spend grouped by dimensions and time buckets", ALL_ROLES,
                 spend.SPEND_SCHEMA, spend.spend_handler(store), spend.SPEND_PARAMS, tags=("spend",),
                 description="Developers and viewers see only their teams' events; `team=<other>` is 403."),
        Endpoint("GET", "/api/v1/budgets", "budgets", "Budgets with live spent, reserved, remaining and "
                 "forecast exhaustion", ALL_ROLES, budgets.BUDGETS_SCHEMA, budgets.budgets_handler(application),
                 tags=("budgets",), description="Budgets concerning other teams are hidden from developers "
                 "and viewers."),
        Endpoint("GET", "/api/v1/decisions", "decisions", "The decisions log", ALL_ROLES,
                 decisions.DECISIONS_SCHEMA, decisions.decisions_handler(store), decisions.DECISIONS_PARAMS,
                 tags=("decisions",), description="Developers and viewers see only their teams' decisions."),
        Endpoint("GET", "/api/v1/keys", "list_keys", "Virtual keys (never their secrets)", ("admin",),
                 keys.KEYS_SCHEMA, keys.list_handler(store), tags=("keys",)),
        Endpoint("POST", "/api/v1/keys", "create_key", "Create a virtual key; the secret is returned once",
                 ("admin",), keys.KEY_SCHEMA, keys.create_handler(store), body=keys.KEY_BODY, status=201,
                 tags=("keys",)),
        Endpoint("DELETE", "/api/v1/keys/{key_id}", "revoke_key", "Revoke a virtual key", ("admin",),
                 {"type": "object", "properties": {"id": {"type": "string"}, "revoked": {"type": "boolean"}}},
                 keys.revoke_handler(store), (Param("key_id", "string", "the key's id", location="path"),),
                 tags=("keys",)),
    )


def _principal(store: Store, request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    secret = header[7:].strip() if header[:7].lower() == "bearer " else ""
    found = token_user(store, secret, datetime.now(UTC)) if secret else None
    if found is None:
        raise ApiError(401, "invalid_token", "missing, unknown, expired or revoked API token, or disabled user "
                       "(send Authorization: Bearer <token>)", "authorization")
    return Principal(found[0], found[1].id)


def _serve(endpoint: Endpoint, store: Store) -> Any:
    handler = endpoint.handler

    async def serve(request: Request) -> Response:
        try:
            principal = await run_in_threadpool(_principal, store, request)
            if principal.role not in endpoint.roles:
                raise ApiError(403, "forbidden_role", f"role {principal.role!r} may not call {endpoint.method} "
                               f"{endpoint.path} (allowed: {', '.join(endpoint.roles)})", "authorization")
            params = parse_params(endpoint, request.query_params, request.path_params)
            body: Any = None
            if endpoint.body is not None:
                try:
                    body = orjson.loads(await request.body() or b"null")
                except orjson.JSONDecodeError as exc:
                    raise ApiError(400, "invalid_json", f"the body is not JSON: {exc}", "(body)") from None
            assert handler is not None
            result = await handler(Call(principal, params, body))
            return JSONResponse(result, status_code=endpoint.status)
        except ApiError as exc:
            return error_response(exc)
        except ValueError as exc:
            return error_response(ApiError(400, "invalid_request", str(exc)))

    return serve


def api_routes(application: Application) -> list[BaseRoute]:
    table = endpoints(application)
    try:
        release = version("costplane")
    except PackageNotFoundError:
        release = "0"
    document = openapi_document(table, release)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    routes: list[BaseRoute] = []
    by_path: dict[str, list[Endpoint]] = {}
    for endpoint in table:
        by_path.setdefault(endpoint.path, []).append(endpoint)
    for path, group in by_path.items():
        for endpoint in group:
            served = openapi if endpoint.handler is None else _serve(endpoint, application.store)
            routes.append(Route(path, served, methods=[endpoint.method], name=endpoint.operation_id))
    return routes
