"""HTTP API of governed environments under /v1/environments, authenticated with a costplane key.

The key's bound attributes are the context (a request can add dimensions and tags the key
does not bind, never override them). Errors are JSON: {"error": {"code", "message", "field"?}}.
Approving or rejecting needs a key with the tag role=approver (or role=admin).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from costplane.attribution.context import Context, InvalidAttribute
from costplane.core.environments import EnvironmentCore
from costplane.core.envpricing import cost_for
from costplane.core.requests import Denial
from costplane.gateway.keys import KeyVerifier
from costplane.ledger import codec
from costplane.ledger.envtypes import EnvironmentRecord, EnvState
from costplane.ledger.windows import WindowError, parse_duration
from costplane.money import format_usd

__all__ = ["environment_routes", "environment_view"]

_METRIC_MAX = 1e9


def _error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status)


def _denial(denial: Denial) -> JSONResponse:
    field = None
    fields = [line.split(": ")[1] for line in denial.message.splitlines() if line.count(": ") >= 2]
    if denial.code == "invalid_input" and fields:
        field = fields[0]
    response = _error(denial.status, denial.code, denial.message, field)
    if denial.decision_id:
        response.headers["x-costplane-decision-id"] = denial.decision_id
    return response


def environment_view(env: EnvironmentRecord, now: datetime) -> dict[str, Any]:
    """The JSON shape of one environment (API and CLI)."""
    running = env.state in (EnvState.ACTIVE, EnvState.EXPIRING) and env.started_at is not None
    so_far = env.accrued_nano
    if running and env.started_at is not None:
        so_far = max(so_far, cost_for(env.hourly_nano, codec.to_us(now) - codec.to_us(env.started_at)))
    left = max(0, int((env.expires_at - now).total_seconds())) if env.is_open else 0
    return {
        "id": env.id, "blueprint": env.blueprint, "state": env.state, "owner": env.owner,
        "context": {**env.context.dimensions(), **dict(env.context.tags)}, "inputs": dict(env.inputs),
        "resources": [dict(r) for r in env.resources], "driver": env.driver.get("type"),
        "hourly_usd": format_usd(env.hourly_nano), "cost_so_far_usd": format_usd(so_far),
        "accrued_usd": format_usd(env.accrued_nano), "projected_usd": format_usd(env.projected_nano),
        "created_at": env.created_at.isoformat(),
        "started_at": env.started_at.isoformat() if env.started_at else None,
        "expires_at": env.expires_at.isoformat(), "time_left_seconds": left, "extensions": env.extensions,
        "metrics": dict(env.metrics), "ended_at": env.ended_at.isoformat() if env.ended_at else None,
        "end_reason": env.end_reason, "decision_id": env.decision_id, "bundle_revision": env.bundle_revision,
    }


def environment_routes(core: EnvironmentCore, keys: KeyVerifier,
                       run: Callable[[Callable[[], Any]], Any] | None = None) -> list[BaseRoute]:
    async def off_loop(fn: Callable[[], Any]) -> Any:
        return await asyncio.to_thread(fn)

    call = run or off_loop

    def authenticate(request: Request) -> Context | JSONResponse:
        header = request.headers.get("authorization", "")
        secret = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
        record = keys.verify(secret)
        if record is None:
            return _error(401, "invalid_api_key", "missing, unknown, expired or revoked costplane key",
                          "authorization")
        ctx = Context.from_mapping(dict(record.attributes), source="key")
        return Context(**ctx.dimensions(), tags=dict(ctx.tags), key_id=record.id)

    async def body_of(request: Request) -> dict[str, Any] | JSONResponse:
        raw = await request.body()
        if not raw:
            return {}
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return _error(400, "invalid_json", f"the body is not JSON: {exc}", "(body)")
        if not isinstance(data, dict):
            return _error(400, "invalid_json", "the body must be a JSON object", "(body)")
        return data

    def merged(ctx: Context, extra: Any) -> Context | JSONResponse:
        if extra is None:
            return ctx
        if not isinstance(extra, Mapping):
            return _error(400, "invalid_field", "context must be an object of dimension/tag to value", "context")
        try:
            given = Context.from_mapping(extra, source="context")
        except InvalidAttribute as exc:
            return _error(400, "invalid_field", str(exc), exc.source)
        dims = {**given.dimensions(), **ctx.dimensions()}  # the key's attributes win
        return Context(**dims, tags={**dict(given.tags), **dict(ctx.tags)}, key_id=ctx.key_id)

    def duration(value: Any, field: str) -> int | JSONResponse | None:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        try:
            return parse_duration(str(value))
        except WindowError as exc:
            return _error(400, "invalid_field", f"{field}: {exc}", field)

    def respond(result: EnvironmentRecord | Denial, status: int = 200) -> Response:
        if isinstance(result, Denial):
            return _denial(result)
        code = 202 if result.state == EnvState.PENDING else status
        return JSONResponse(environment_view(result, core.clock()), status_code=code)

    async def launch(request: Request) -> Response:
        ctx = authenticate(request)
        if isinstance(ctx, JSONResponse):
            return ctx
        body = await body_of(request)
        if isinstance(body, JSONResponse):
            return body
        blueprint = body.get("blueprint")
        if not isinstance(blueprint, str) or not blueprint:
            return _error(400, "invalid_field", "blueprint is required: the name of a blueprint", "blueprint")
        inputs = body.get("inputs") or {}
        if not isinstance(inputs, dict):
            return _error(400, "invalid_field", "inputs must be an object of input name to value", "inputs")
        ttl = duration(body.get("ttl"), "ttl")
        if isinstance(ttl, JSONResponse):
            return ttl
        full = merged(ctx, body.get("context"))
        if isinstance(full, JSONResponse):
            return full
        return respond(await call(lambda: core.launch(full, blueprint, inputs, ttl)), 201)

    async def listing(request: Request) -> Response:
        ctx = authenticate(request)
        if isinstance(ctx, JSONResponse):
            return ctx
        states = tuple(s for s in request.query_params.get("state", "").split(",") if s)
        found = await call(lambda: core.store.list_environments(states=states, limit=1000))
        now = core.clock()
        return JSONResponse({"environments": [environment_view(e, now) for e in found]})

    async def show(request: Request) -> Response:
        ctx = authenticate(request)
        if isinstance(ctx, JSONResponse):
            return ctx
        env_id = request.path_params["env_id"]
        env = await call(lambda: core.store.get_environment(env_id))
        if env is None:
            return _error(404, "unknown_environment", f"no environment {env_id}", "env_id")
        view = environment_view(env, core.clock())
        view["transitions"] = [{"ts": t.ts.isoformat(), "from": t.from_state, "to": t.to_state, "reason": t.reason,
                                "decision_id": t.decision_id}
                               for t in await call(lambda: core.store.environment_transitions(env_id))]
        return JSONResponse(view)

    async def extend(request: Request) -> Response:
        ctx = authenticate(request)
        if isinstance(ctx, JSONResponse):
            return ctx
        body = await body_of(request)
        if isinstance(body, JSONResponse):
            return body
        by = duration(body.get("by"), "by")
        if isinstance(by, JSONResponse):
            return by
        env_id = request.path_params["env_id"]
        return respond(await call(lambda: core.extend(env_id, ctx, by)))

    async def teardown(request: Request) -> Response:
        ctx = authenticate(request)
        if isinstance(ctx, JSONResponse):
            return ctx
        env_id = request.path_params["env_id"]
        who = ctx.owner or ctx.user or ctx.key_id
        return respond(await call(lambda: core.teardown(env_id, f"torn down by {who}", ctx)))

    def approver(ctx: Context) -> JSONResponse | None:
        if ctx.tags.get("role") in ("approver", "admin"):
            return None
        return _error(403, "not_an_approver", "approving needs a key with the tag role=approver", "authorization")

    async def approve(request: Request) -> Response:
        ctx = authenticate(request)
        if isinstance(ctx, JSONResponse):
            return ctx
        refused = approver(ctx)
        if refused is not None:
            return refused
        env_id = request.path_params["env_id"]
        return respond(await call(lambda: core.approve(env_id, ctx)))

    async def reject(request: Request) -> Response:
        ctx = authenticate(request)
        if isinstance(ctx, JSONResponse):
            return ctx
        refused = approver(ctx)
        if refused is not None:
            return refused
        body = await body_of(request)
        if isinstance(body, JSONResponse):
            return body
        env_id = request.path_params["env_id"]
        return respond(await call(lambda: core.reject(env_id, ctx, str(body.get("reason") or ""))))

    async def metrics(request: Request) -> Response:
        ctx = authenticate(request)
        if isinstance(ctx, JSONResponse):
            return ctx
        body = await body_of(request)
        if isinstance(body, JSONResponse):
            return body
        readings: dict[str, float] = {}
        for name, value in body.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= _METRIC_MAX:
                return _error(400, "invalid_field", f"{name} must be a number >= 0 (e.g. gpu_util: 3.5)", name)
            readings[name] = float(value)
        if not readings:
            return _error(400, "invalid_field", "send at least one metric, e.g. {\"gpu_util\": 3.5}", "(body)")
        env_id = request.path_params["env_id"]
        env = await call(lambda: core.store.get_environment(env_id))
        if env is None:
            return _error(404, "unknown_environment", f"no environment {env_id}", "env_id")
        now = core.clock()
        merged_metrics = {**dict(env.metrics), **{k: {"value": v, "at": now.isoformat(), "source": "api"}
                                                   for k, v in readings.items()}}
        await call(lambda: core.store.update_environment(env_id, {"metrics": merged_metrics, "next_action_at": now},
                                                         states=(EnvState.ACTIVE, EnvState.EXPIRING)))
        return JSONResponse({"id": env_id, "metrics": merged_metrics})

    base = "/v1/environments"
    return [
        Route(base, launch, methods=["POST"]),
        Route(base, listing, methods=["GET"]),
        Route(base + "/{env_id}", show, methods=["GET"]),
        Route(base + "/{env_id}/extend", extend, methods=["POST"]),
        Route(base + "/{env_id}/teardown", teardown, methods=["POST"]),
        Route(base + "/{env_id}/approve", approve, methods=["POST"]),
        Route(base + "/{env_id}/reject", reject, methods=["POST"]),
        Route(base + "/{env_id}/metrics", metrics, methods=["POST"]),
    ]
