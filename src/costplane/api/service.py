"""The HTTP APIs: the one route table, authentication, role and scoping checks, and dispatch.

Every endpoint — the users' API under /api/v1 and the machine API under /v1 (environments,
runs, outcomes, SLOs, OTLP traces) — is declared once in `endpoints()`, with its ONE scoping
rule; `api_routes` serves exactly that table (and refuses to build one with an undeclared
rule) and `GET /api/v1/openapi.json` renders it. Credentials are resolved by `costplane.auth`
(keys, API tokens: one cache, revocation-exact). The table gets the server's one
`EnvironmentCore`, the same instance the scheduler uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from costplane.api import budgets, bundle, decisions, keys, runs, slos, spend
from costplane.api import environments as envs
from costplane.api.errors import ApiError, error_response
from costplane.api.openapi import openapi_document
from costplane.api.overview import OVERVIEW_PARAMS, OVERVIEW_SCHEMA, overview_handler
from costplane.api.principal import ALL_ROLES, KEY_ROLES, Principal
from costplane.api.runs import run_owners
from costplane.api.table import RULES, Call, Endpoint, Param, Scoping, Served, WithStatus, invoke
from costplane.app import Application
from costplane.auth.authenticator import Authenticator, request_secret
from costplane.core.environments import EnvironmentCore
from costplane.lifecycle.machine import machine_environment_endpoints
from costplane.otel.receiver import otlp_endpoint
from costplane.runs.api import run_endpoints

__all__ = ["api_routes", "check_table", "endpoints"]

_WHOAMI = {"type": "object", "required": ["user", "role"], "properties": {
    "user": {"type": "string"}, "id": {"type": "string"}, "role": {"type": "string"},
    "teams": {"type": ["array", "null"], "items": {"type": "string"},
              "description": "null = every team (admin, finance)"},
    "projects": {"type": ["array", "null"], "items": {"type": "string"},
                 "description": "projects readable besides the teams; null = every project"},
    "token_id": {"type": "string"}}}
_LAUNCHERS = ("admin", "developer")


async def _whoami(call: Call) -> dict[str, Any]:
    p = call.principal
    return {"user": p.user.name, "id": p.user.id, "role": p.role,
            "teams": list(p.teams) if p.teams is not None else None,
            "projects": list(p.projects) if p.projects is not None else None, "token_id": p.token_id}


def endpoints(application: Application, environments: EnvironmentCore) -> tuple[Endpoint, ...]:
    """The one route table: the users' API (/api/v1) and the machine API (/v1)."""
    store = application.store
    env = envs.EnvironmentHandlers(environments)
    env_path = "/api/v1/environments/{env_id}"
    scoped = "Developers and viewers see only what their teams or projects may read (docs/api.md)."
    rows = Scoping("rows", "developers and viewers get only rows of their teams or projects")
    admin = Scoping("global", "admin only; keys are not scoped by team")

    def env_owner(call: Call) -> list[dict[str, str | None]] | None:
        found = store.get_environment(str(call.params["env_id"]))
        return None if found is None else [dict(found.context.dimensions())]

    def run_owner(call: Call) -> list[dict[str, str | None]] | None:  # the users' rule of api/runs.py
        owners = run_owners(store, str(call.params["run_id"]))
        if not owners:  # unattributed or unknown: only an unscoped caller goes on (unknown is then 404)
            return [{}] if call.principal.scope is None else None
        return [{"team": team, "project": project} for team, project in owners]

    one_env = Scoping("resource", "another team's environment is 404, like an unknown one", env_owner, "env_id",
                      "unknown_environment")
    return (
        Endpoint("GET", "/api/v1/openapi.json", "openapi", "This OpenAPI 3.1 document", (),
                 {"type": "object"}, tags=("meta",), scoping=Scoping("public", "no tenant data")),
        Endpoint("GET", "/api/v1/whoami", "whoami", "The calling user, role and team scope", ALL_ROLES,
                 _WHOAMI, _whoami, tags=("meta",), scoping=Scoping("self", "the caller's own identity")),
        Endpoint("GET", "/api/v1/overview", "overview", "Today, month to date, burn rate, forecast, top movers, "
                 "denials", ALL_ROLES, OVERVIEW_SCHEMA, overview_handler(application), OVERVIEW_PARAMS,
                 tags=("spend",), description="Scoped like /api/v1/spend: developers and viewers see their teams.",
                 scoping=rows),
        Endpoint("GET", "/api/v1/spend", "spend", "Spend grouped by dimensions and time buckets", ALL_ROLES,
                 spend.SPEND_SCHEMA, spend.spend_handler(store), spend.SPEND_PARAMS, tags=("spend",),
                 description="Developers and viewers see only their teams' events; `team=<other>` is 403.",
                 scoping=rows),
        Endpoint("GET", "/api/v1/budgets", "budgets", "Budgets with live spent, reserved, remaining and "
                 "forecast exhaustion", ALL_ROLES, budgets.BUDGETS_SCHEMA, budgets.budgets_handler(application),
                 tags=("budgets",), description="Budgets concerning other teams are hidden from developers "
                 "and viewers.", scoping=rows),
        Endpoint("GET", "/api/v1/decisions", "decisions", "The decisions log", ALL_ROLES,
                 decisions.DECISIONS_SCHEMA, decisions.decisions_handler(store, application.config.bundle),
                 decisions.DECISIONS_PARAMS,
                 tags=("decisions",), description="Developers and viewers see only their teams' (or projects') "
                 "decisions. Paged: pass `next_cursor` back as `cursor`; stable under concurrent inserts.",
                 scoping=rows),
        Endpoint("GET", "/api/v1/keys", "list_keys", "Virtual keys (never their secrets)", ("admin",),
                 keys.KEYS_SCHEMA, keys.list_handler(store), tags=("keys",), scoping=admin),
        Endpoint("POST", "/api/v1/keys", "create_key", "Create a virtual key; the secret is returned once",
                 ("admin",), keys.KEY_SCHEMA, keys.create_handler(store), body=keys.KEY_BODY, status=201,
                 tags=("keys",), scoping=admin),
        Endpoint("DELETE", "/api/v1/keys/{key_id}", "revoke_key", "Revoke a virtual key", ("admin",),
                 {"type": "object", "properties": {"id": {"type": "string"}, "revoked": {"type": "boolean"}}},
                 keys.revoke_handler(store), (Param("key_id", "string", "the key's id", location="path"),),
                 tags=("keys",), scoping=admin, description="Refused by the very next request that presents "
                 "the key, on every server process sharing the store."),
        Endpoint("GET", "/api/v1/blueprints", "blueprints", "Blueprints: inputs, resources, lifecycle, required "
                 "tags and the estimated hourly cost of the defaults", ALL_ROLES, bundle.BLUEPRINTS_SCHEMA,
                 bundle.blueprints_handler(environments), tags=("environments",),
                 description="Declared configuration: every role sees every blueprint.",
                 scoping=Scoping("config", "declared configuration, no tenant data")),
        Endpoint("GET", "/api/v1/environments", "environments", "Governed environments with TTL left, accrued "
                 "cost and hourly rate", ALL_ROLES, envs.ENVIRONMENTS_SCHEMA, env.list, envs.LIST_PARAMS,
                 tags=("environments",), description=scoped, scoping=rows),
        Endpoint("GET", env_path, "environment", "One environment and its transitions", ALL_ROLES,
                 envs.ENVIRONMENT_SCHEMA, env.show, (envs.ENV_PARAM,), tags=("environments",),
                 description="Another team's environment is 404, like an unknown one.", scoping=one_env),
        Endpoint("POST", "/api/v1/environments", "launch_environment", "Launch an environment from a blueprint; "
                 "the caller becomes its owner", _LAUNCHERS, envs.ENVIRONMENT_SCHEMA, env.launch,
                 body=envs.LAUNCH_BODY, status=201, tags=("environments",),
                 description="201 when running, 202 when it waits for approval (`approval`). A developer launches "
                 "for one of their teams (403 naming `team` otherwise; default: their only team) and only into "
                 "projects of theirs (403 naming `project`). Refusals are 4xx with the policy or budget, decision "
                 "id and bundle revision.",
                 scoping=Scoping("attribution", "team and project must be within the developer's scope")),
        Endpoint("POST", env_path + "/extend", "extend_environment", "Extend a running environment's TTL",
                 _LAUNCHERS, envs.ENVIRONMENT_SCHEMA, env.extend, (envs.ENV_PARAM,), body=envs.EXTEND_BODY,
                 tags=("environments",), description="Body `{\"by\": \"2h\"}` (default: the blueprint's "
                 "extend_by). Developers: environments of their teams only.", scoping=one_env),
        Endpoint("POST", env_path + "/teardown", "teardown_environment", "Tear an environment down now", _LAUNCHERS,
                 envs.ENVIRONMENT_SCHEMA, env.teardown, (envs.ENV_PARAM,), body={"type": ["object", "null"]},
                 tags=("environments",), description="Developers: environments of their teams only.",
                 scoping=one_env),
        Endpoint("POST", env_path + "/approve", "approve_environment", "Approve a launch waiting for approval",
                 ("admin",), envs.ENVIRONMENT_SCHEMA, env.approve, (envs.ENV_PARAM,), body={"type": ["object", "null"]},
                 tags=("environments",), scoping=one_env),
        Endpoint("POST", env_path + "/reject", "reject_environment", "Reject a launch waiting for approval",
                 ("admin",), envs.ENVIRONMENT_SCHEMA, env.reject, (envs.ENV_PARAM,), body=envs.REJECT_BODY,
                 tags=("environments",), scoping=one_env),
        Endpoint("GET", "/api/v1/runs", "runs", "Top-level runs, newest first, with cost and tokens", ALL_ROLES,
                 runs.RUNS_SCHEMA, runs.runs_handler(store), runs.RUNS_PARAMS, tags=("runs",), description=scoped,
                 scoping=rows),
        Endpoint("GET", "/api/v1/runs/{run_id}", "run", "A run's cost tree: steps, tool calls, nested runs, LLM "
                 "calls", ALL_ROLES, runs.RUN_SCHEMA, runs.run_handler(store), (runs.RUN_PARAM,), tags=("runs",),
                 description="Another team's run is 404, like an unknown one.",
                 scoping=Scoping("resource", "another team's run is 404, like an unknown one", run_owner,
                                 "run_id", "run_not_found")),
        Endpoint("GET", "/api/v1/outcomes", "outcomes", "Cost per outcome by outcome type, optionally grouped",
                 ALL_ROLES, runs.OUTCOMES_SCHEMA, runs.outcomes_handler(store), runs.OUTCOMES_PARAMS,
                 tags=("runs",), description=scoped, scoping=rows),
        Endpoint("GET", "/api/v1/slos", "slos", "Economic SLOs: current value, target and breach state", ALL_ROLES,
                 slos.SLOS_SCHEMA, slos.slos_handler(application), tags=("runs",),
                 description="Developers and viewers see only SLOs whose scope names one of their teams or "
                 "projects.", scoping=rows),
        Endpoint("GET", "/api/v1/bundle", "bundle", "The active bundle: revision, counts and names", ALL_ROLES,
                 bundle.BUNDLE_SCHEMA, bundle.bundle_handler(application), tags=("meta",),
                 description="Budgets and SLOs are listed as far as the caller sees them on /budgets and /slos.",
                 scoping=rows),
        *machine_environment_endpoints(environments),
        *run_endpoints(application),
        otlp_endpoint(application),
    )


def _principal(auth: Authenticator, endpoint: Endpoint, request: Request) -> Principal:
    principal = auth.principal(request_secret(request.headers))
    if principal is None:
        if set(endpoint.roles) & set(KEY_ROLES):
            raise ApiError(401, "invalid_api_key", "missing, unknown, expired or revoked costplane key (send "
                           "Authorization: Bearer cpk_… or x-api-key)", "authorization")
        raise ApiError(401, "invalid_token", "missing, unknown, expired or revoked API token, or disabled user "
                       "(send Authorization: Bearer <token>)", "authorization")
    return principal


async def _body(endpoint: Endpoint, request: Request) -> Any:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > endpoint.max_body:
        raise ApiError(413, "request_too_large", f"the body exceeds {endpoint.max_body} bytes", "(body)")
    raw = await request.body()
    if len(raw) > endpoint.max_body:
        raise ApiError(413, "request_too_large", f"the body exceeds {endpoint.max_body} bytes", "(body)")
    if endpoint.raw_body:
        return raw
    try:
        return orjson.loads(raw or b"null")
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not JSON: {exc}", "(body)") from None


def _serve(endpoint: Endpoint, auth: Authenticator) -> Any:
    async def serve(request: Request) -> Response:
        try:
            principal = await run_in_threadpool(_principal, auth, endpoint, request)
            body: Any = None
            if endpoint.body is not None and principal.role in endpoint.roles:
                body = await _body(endpoint, request)
            result = await invoke(endpoint, principal, request.query_params, request.path_params, body,
                                  request.headers)
            if isinstance(result, Served):
                served: Response = result.response
                return served
            status = result.status if isinstance(result, WithStatus) else endpoint.status
            return JSONResponse(result, status_code=status)
        except ApiError as exc:
            return error_response(exc)
        except ValueError as exc:
            return error_response(ApiError(400, "invalid_request", str(exc), "(body)"))

    return serve


def check_table(table: Sequence[Endpoint]) -> None:
    """Refuse a table where an endpoint declares no (or an unknown) scoping rule, or a path and
    method twice: such an endpoint would be served without a tenant rule."""
    seen: set[tuple[str, str]] = set()
    for endpoint in table:
        if endpoint.scoping is None or endpoint.scoping.rule not in RULES:
            raise ValueError(f"{endpoint.method} {endpoint.path} ({endpoint.operation_id}) declares no scoping "
                             f"rule (one of {', '.join(RULES)})")
        if endpoint.scoping.rule == "resource" and endpoint.scoping.owner is None:
            raise ValueError(f"{endpoint.operation_id}: a resource rule needs its owner")
        if (endpoint.method, endpoint.path) in seen:
            raise ValueError(f"{endpoint.method} {endpoint.path} is declared twice")
        seen.add((endpoint.method, endpoint.path))


def api_routes(application: Application, table: Sequence[Endpoint]) -> list[BaseRoute]:
    """The routes serving `table` (built by `endpoints`) and its OpenAPI document."""
    check_table(table)
    auth = application.auth
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
            served = openapi if endpoint.handler is None else _serve(endpoint, auth)
            routes.append(Route(path, served, methods=[endpoint.method], name=endpoint.operation_id))
    return routes
