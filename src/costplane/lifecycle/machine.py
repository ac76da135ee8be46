"""The machine API of governed environments (/v1/environments) as route-table endpoints.

Roles: a costplane key (`key`), or a key tagged role=approver|admin (`approver`), which alone may
approve or reject. Scoping, applied by the dispatcher: listing returns only environments the key
covers (`rows`); every `/{env_id}` route is `resource` — another scope's environment is 404
like an unknown one; launching is `attribution` — the key's bound attributes override the
body's `context`, so nothing lands outside the key's scope.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool

from costplane.api.environments import ENVIRONMENT_SCHEMA, ENVIRONMENTS_SCHEMA, STATES, refusal
from costplane.api.errors import ApiError
from costplane.api.principal import APPROVER, KEY_ROLES, Principal
from costplane.api.table import Call, Endpoint, Param, Scoping, WithStatus, check_attribution
from costplane.attribution.context import Context, InvalidAttribute
from costplane.core.environments import EnvironmentCore
from costplane.core.requests import Denial
from costplane.ledger.envtypes import EnvironmentRecord, EnvState
from costplane.ledger.usertypes import EnvironmentQuery
from costplane.ledger.windows import MAX_DURATION_SECONDS, WindowError, parse_duration
from costplane.lifecycle.api import environment_view
from costplane.policy.hookschema import SCHEMAS

__all__ = ["machine_environment_endpoints"]

#: the environment.runtime facts the scheduler computes: a reported metric may not stand in for one
_COMPUTED_FACTS = frozenset(f.name for f in SCHEMAS["environment.runtime"].fields if not f.optional)
_METRIC_MAX = 1e9
_ENV = Param("env_id", "string", "the environment's id", location="path")
_DURATION = {"type": ["string", "integer"], "description": "a duration such as 2h (or seconds)"}
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
_LAUNCH = {"type": "object", "required": ["blueprint"], "properties": {
    "blueprint": {"type": "string"}, "inputs": {"type": "object"}, "ttl": _DURATION,
    "context": {**_STRINGS, "description": "dimensions and tags the key does not bind (the key's win)"}}}
_METRICS = {"type": "object", "additionalProperties": {"type": "number", "minimum": 0},
            "description": "idle metrics, e.g. {\"gpu_util\": 3.5}"}
_METRICS_SCHEMA = {"type": "object", "required": ["id", "metrics"], "properties": {
    "id": {"type": "string"}, "metrics": {"type": "object"}}}
_REJECT = {"type": ["object", "null"], "properties": {"reason": {"type": "string"}}}
_EXTEND = {"type": ["object", "null"], "properties": {"by": _DURATION}}


def duration(value: Any, field: str) -> int | None:
    """A duration field: positive seconds or a text such as '2h'; at most a year (400 naming `field`)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ApiError(400, "invalid_field", f"{field}: expected a duration such as '2h', got {value!r}", field)
    try:
        seconds = value if isinstance(value, int) else parse_duration(value)
    except WindowError as exc:
        raise ApiError(400, "invalid_field", f"{field}: {exc}", field) from None
    if not 0 < seconds <= MAX_DURATION_SECONDS:
        raise ApiError(400, "invalid_field", f"{field}: must be between 1 second and "
                       f"{MAX_DURATION_SECONDS // 86_400} days", field)
    return seconds


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object", "(body)")
    return body


def key_context(principal: Principal, extra: Any = None) -> Context:
    """The key's context (its bound attributes win over `extra`, the body's `context`)."""
    key = principal.key
    bound = dict(key.attributes) if key is not None else {}
    if extra is not None and not isinstance(extra, Mapping):
        raise ApiError(400, "invalid_field", "context: expected an object of dimension/tag to value", "context")
    try:
        given = Context.from_mapping(dict(extra or {}), source="context")
        ctx = Context.from_mapping(bound, source="key")
    except InvalidAttribute as exc:
        raise ApiError(400, "invalid_field", str(exc), exc.source) from None
    dims = {**given.dimensions(), **ctx.dimensions()}
    return Context(**dims, tags={**dict(given.tags), **dict(ctx.tags)}, key_id=key.id if key else None)


def _values(env: EnvironmentRecord) -> dict[str, str | None]:
    return dict(env.context.dimensions())


class _Handlers:
    def __init__(self, core: EnvironmentCore) -> None:
        self.core = core

    def owner(self, call: Call) -> Sequence[Mapping[str, str | None]] | None:
        env = self.core.store.get_environment(str(call.params["env_id"]))
        return None if env is None else [_values(env)]

    def _result(self, result: EnvironmentRecord | Denial, status: int = 200) -> dict[str, Any]:
        if isinstance(result, Denial):
            raise refusal(result)
        code = 202 if result.state == EnvState.PENDING else status
        return WithStatus(code, environment_view(result, self.core.clock()))

    async def launch(self, call: Call) -> dict[str, Any]:
        body = _object(call.body)
        blueprint = body.get("blueprint")
        if not isinstance(blueprint, str) or not blueprint:
            raise ApiError(400, "invalid_field", "blueprint: required, the name of a blueprint", "blueprint")
        inputs = body.get("inputs") or {}
        if not isinstance(inputs, dict):
            raise ApiError(400, "invalid_field", "inputs: expected an object of input name to value", "inputs")
        ttl = duration(body.get("ttl"), "ttl")
        ctx = key_context(call.principal, body.get("context"))
        check_attribution(call.principal, ctx.dimensions(), "context.")
        return self._result(await run_in_threadpool(self.core.launch, ctx, blueprint, inputs, ttl), 201)

    async def listing(self, call: Call) -> dict[str, Any]:
        principal = call.principal
        query = EnvironmentQuery(states=call.params["state"] or (), scope=principal.scope, limit=1000)
        found = await run_in_threadpool(self.core.store.query_environments, query)
        now = self.core.clock()
        return {"environments": [environment_view(e, now) for e in found if principal.covers(_values(e))]}

    async def show(self, call: Call) -> dict[str, Any]:
        env_id = str(call.params["env_id"])

        def load() -> dict[str, Any]:
            env = self.core.store.get_environment(env_id)
            if env is None:
                raise ApiError(404, "unknown_environment", f"env_id: no environment {env_id!r}", "env_id")
            view = environment_view(env, self.core.clock())
            view["transitions"] = [{"ts": t.ts.isoformat(), "from": t.from_state, "to": t.to_state,
                                    "reason": t.reason, "decision_id": t.decision_id}
                                   for t in self.core.store.environment_transitions(env_id)]
            return view

        return await run_in_threadpool(load)

    async def extend(self, call: Call) -> dict[str, Any]:
        by = duration(_object(call.body).get("by"), "by")
        ctx = key_context(call.principal)
        env_id = str(call.params["env_id"])
        return self._result(await run_in_threadpool(self.core.extend, env_id, ctx, by))

    async def teardown(self, call: Call) -> dict[str, Any]:
        ctx = key_context(call.principal)
        who = ctx.owner or ctx.user or ctx.key_id
        env_id = str(call.params["env_id"])
        return self._result(await run_in_threadpool(self.core.teardown, env_id, f"torn down by {who}", ctx))

    async def approve(self, call: Call) -> dict[str, Any]:
        ctx = key_context(call.principal)
        return self._result(await run_in_threadpool(self.core.approve, str(call.params["env_id"]), ctx))

    async def reject(self, call: Call) -> dict[str, Any]:
        reason = _object(call.body).get("reason") or ""
        if not isinstance(reason, str):
            raise ApiError(400, "invalid_field", f"reason: expected a string, got {reason!r}", "reason")
        ctx = key_context(call.principal)
        return self._result(await run_in_threadpool(self.core.reject, str(call.params["env_id"]), ctx, reason))

    async def metrics(self, call: Call) -> dict[str, Any]:
        body = _object(call.body)
        readings: dict[str, float] = {}
        for name, value in body.items():
            if name in _COMPUTED_FACTS:
                raise ApiError(400, "invalid_field", f"{name}: a runtime fact the scheduler computes, not a metric "
                               f"(metrics are measurements such as gpu_util or cpu_util)", name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= _METRIC_MAX:
                raise ApiError(400, "invalid_field", f"{name}: must be a number >= 0 (e.g. gpu_util: 3.5)", name)
            readings[name] = float(value)
        if not readings:
            raise ApiError(400, "invalid_field", "send at least one metric, e.g. {\"gpu_util\": 3.5}", "(body)")
        env_id = str(call.params["env_id"])
        store = self.core.store

        def record() -> dict[str, Any]:
            env = store.get_environment(env_id)
            if env is None:
                raise ApiError(404, "unknown_environment", f"env_id: no environment {env_id!r}", "env_id")
            now = self.core.clock()
            merged = {**dict(env.metrics), **{k: {"value": v, "at": now.isoformat(), "source": "api"}
                                               for k, v in readings.items()}}
            store.update_environment(env_id, {"metrics": merged, "next_action_at": now},
                                     states=(EnvState.ACTIVE, EnvState.EXPIRING))
            return {"id": env_id, "metrics": merged}

        return await run_in_threadpool(record)


def machine_environment_endpoints(core: EnvironmentCore) -> tuple[Endpoint, ...]:
    """/v1/environments… for costplane keys, declared in the route table."""
    h = _Handlers(core)
    base = "/v1/environments"
    one = base + "/{env_id}"
    mine = Scoping("resource", "another scope's environment is 404, like an unknown one", h.owner, "env_id",
                   "unknown_environment")
    tags = ("machine: environments",)
    key_scope = "A key bound to team/project/agent attributes sees and acts on exactly what they cover."
    return (
        Endpoint("POST", base, "machine_launch_environment", "Launch an environment from a blueprint (key)",
                 KEY_ROLES, ENVIRONMENT_SCHEMA, h.launch, body=_LAUNCH, status=201, tags=tags,
                 scoping=Scoping("attribution", "the key's bound attributes override the body's context"),
                 description="201 when running, 202 when it waits for approval. The key's bound attributes are "
                 "the context; `context` adds dimensions and tags the key does not bind."),
        Endpoint("GET", base, "machine_environments", "Environments the key's scope covers", KEY_ROLES,
                 ENVIRONMENTS_SCHEMA, h.listing,
                 (Param("state", "list", "only environments in these states, comma-separated", enum=STATES),),
                 tags=tags, scoping=Scoping("rows", key_scope), description=key_scope),
        Endpoint("GET", one, "machine_environment", "One environment and its transitions", KEY_ROLES,
                 ENVIRONMENT_SCHEMA, h.show, (_ENV,), tags=tags, scoping=mine),
        Endpoint("POST", one + "/extend", "machine_extend_environment", "Extend a running environment's TTL",
                 KEY_ROLES, ENVIRONMENT_SCHEMA, h.extend, (_ENV,), body=_EXTEND, tags=tags, scoping=mine),
        Endpoint("POST", one + "/teardown", "machine_teardown_environment", "Tear an environment down now",
                 KEY_ROLES, ENVIRONMENT_SCHEMA, h.teardown, (_ENV,), body={"type": ["object", "null"]}, tags=tags,
                 scoping=mine),
        Endpoint("POST", one + "/approve", "machine_approve_environment", "Approve a launch waiting for approval",
                 (APPROVER,), ENVIRONMENT_SCHEMA, h.approve, (_ENV,), body={"type": ["object", "null"]}, tags=tags,
                 scoping=mine, description="Needs a key tagged role=approver (or role=admin) AND scope over "
                 "the environment."),
        Endpoint("POST", one + "/reject", "machine_reject_environment", "Reject a launch waiting for approval",
                 (APPROVER,), ENVIRONMENT_SCHEMA, h.reject, (_ENV,), body=_REJECT, tags=tags, scoping=mine),
        Endpoint("POST", one + "/metrics", "machine_environment_metrics", "Report idle metrics of an environment",
                 KEY_ROLES, _METRICS_SCHEMA, h.metrics, (_ENV,), body=_METRICS, tags=tags, scoping=mine),
    )
