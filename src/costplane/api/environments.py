"""Governed environments in the users' API: list, show, launch, extend, tear down, approve, reject.

One `EnvironmentCore` (the one the scheduler and `/v1/environments` use) does the work; this
module turns a user into a context and applies the scoping rule:

* reading: an environment is visible when the caller `may_read` its (team, project); another
  team's environment is 404, exactly like one that does not exist (existence is not leaked);
* launching (admin, developer): the user becomes `owner` and `user`; a developer launches for
  one of their teams (403 naming `team` otherwise; default = their only team, 400 if they have
  several), a developer scoped only to projects launches for one of their projects; a `project`
  outside the developer's projects is 403 naming `project` (spend never lands in another's project);
* extend / teardown: admin any, developer the environments they may read; approve / reject: admin.

A refusal by the core (policy, budget, TTL, inputs) is a 4xx error carrying the same
explanation `/v1/environments` gives: code, message (policy or budget, numbers, decision id,
bundle revision) plus `decision_id`, `bundle_revision`, `policies`, `reason`.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool

from costplane.api.errors import ApiError
from costplane.api.principal import Principal
from costplane.api.table import Call, Param, WithStatus
from costplane.attribution.context import Context, InvalidAttribute
from costplane.core.environments import EnvironmentCore
from costplane.core.requests import Denial
from costplane.httpstatus import denial_status
from costplane.ledger.envtypes import EnvironmentRecord, EnvState
from costplane.ledger.usertypes import EnvironmentQuery
from costplane.ledger.windows import WindowError, parse_duration
from costplane.lifecycle.api import environment_view

__all__ = [
    "ENVIRONMENTS_SCHEMA",
    "ENVIRONMENT_SCHEMA",
    "ENV_PARAM",
    "EXTEND_BODY",
    "LAUNCH_BODY",
    "LIST_PARAMS",
    "REJECT_BODY",
    "STATES",
    "EnvironmentHandlers",
]

STATES: tuple[str, ...] = (EnvState.PENDING, EnvState.ACTIVE, EnvState.EXPIRING, EnvState.SUSPENDED,
                           EnvState.TORN_DOWN, EnvState.REJECTED, EnvState.FAILED)
ENV_PARAM = Param("env_id", "string", "the environment's id", location="path")
LIST_PARAMS: tuple[Param, ...] = (
    Param("status", "list", "only environments in these states, comma-separated", enum=STATES),
    Param("team", "string", "only this team's environments"),
    Param("blueprint", "string", "only environments of this blueprint"),
    Param("limit", "integer", "at most this many, newest first", minimum=1, maximum=1000, default=100),
)
_USD = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
ENVIRONMENT_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["id", "blueprint", "state", "expires_at", "time_left_seconds", "hourly_usd"],
    "properties": {
        "id": {"type": "string"}, "blueprint": {"type": "string"}, "state": {"type": "string"},
        "owner": {"type": ["string", "null"]}, "context": {"type": "object"}, "inputs": {"type": "object"},
        "resources": {"type": "array", "items": {"type": "object"}}, "driver": {"type": ["string", "null"]},
        "hourly_usd": _USD, "cost_so_far_usd": _USD, "accrued_usd": _USD, "projected_usd": _USD,
        "created_at": {"type": "string", "format": "date-time"},
        "started_at": {"type": ["string", "null"], "format": "date-time"},
        "expires_at": {"type": "string", "format": "date-time"}, "time_left_seconds": {"type": "integer"},
        "extensions": {"type": "integer"}, "metrics": {"type": "object"},
        "ended_at": {"type": ["string", "null"], "format": "date-time"}, "end_reason": {"type": ["string", "null"]},
        "decision_id": {"type": "string"}, "bundle_revision": {"type": "string"},
        "transitions": {"type": "array", "items": {"type": "object"}},
        "approval": {"type": "object", "description": "present when the launch waits for approval (202)"}},
}
ENVIRONMENTS_SCHEMA: dict[str, Any] = {"type": "object", "required": ["environments"], "properties": {
    "environments": {"type": "array", "items": ENVIRONMENT_SCHEMA}}}
_DURATION = {"type": ["string", "integer"], "description": "a duration such as 2h (or seconds)"}
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
LAUNCH_BODY: dict[str, Any] = {
    "type": "object", "required": ["blueprint"], "properties": {
        "blueprint": {"type": "string"}, "inputs": {"type": "object"},
        "tags": {**_STRINGS, "description": "context dimensions (tier, experiment, …) and tags (cost_center, …)"},
        "team": {"type": "string"}, "project": {"type": "string"}, "ttl": _DURATION}}
EXTEND_BODY: dict[str, Any] = {"type": ["object", "null"], "properties": {"by": _DURATION}}
REJECT_BODY: dict[str, Any] = {"type": ["object", "null"], "properties": {"reason": {"type": "string"}}}

_BOUND = ("team", "project", "owner", "user")  # set from the body fields and the user, never from tags
_EXPLAINED = re.compile(r"\(decision (\S+), bundle (\S+)\)$")
_POLICY = re.compile(r"polic(?:y|ies) '([^']+)'")


def _object(body: Any, what: str) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", f"the body must be a JSON object ({what})", "(body)")
    return body


def _duration(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if not isinstance(value, str):
        raise ApiError(400, "invalid_field", f"{field}: expected a duration such as '2h', got {value!r}", field)
    try:
        return parse_duration(value)
    except WindowError as exc:
        raise ApiError(400, "invalid_field", f"{field}: {exc}", field) from None


def _optional_text(body: dict[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "invalid_field", f"{field}: expected a non-empty string, got {value!r}", field)
    return value.strip()


def refusal(denial: Denial) -> ApiError:
    """The core's explanation of a refusal as an API error (status, code, message, decision, revision)."""
    found = _EXPLAINED.search(denial.message)
    details: dict[str, Any] = {"decision_id": denial.decision_id,
                               "policies": _POLICY.findall(denial.message), "reason": denial.message}
    if found is not None:
        details["bundle_revision"] = found.group(2)
    field = {"unknown_blueprint": "blueprint", "ttl_exceeds_max": "ttl", "missing_tags": "tags",
             "max_ttl_exceeded": "by", "max_extensions": "by", "invalid_extension": "by",
             "not_running": "env_id", "not_pending": "env_id",
             "unknown_environment": "env_id"}.get(denial.code)
    if denial.code == "invalid_input":
        named = [part for line in denial.message.splitlines() for part in line.split(": ")[1:2]
                 if part.startswith("inputs")]
        field = named[0] if named else "inputs"
    return ApiError(denial_status(denial), denial.code, denial.message, field, details)


class EnvironmentHandlers:
    """The handlers of the environment endpoints, over the server's one EnvironmentCore."""

    def __init__(self, core: EnvironmentCore) -> None:
        self.core = core

    # -- helpers ----------------------------------------------------------------------------------
    def _view(self, env: EnvironmentRecord) -> dict[str, Any]:
        return environment_view(env, self.core.clock())

    def _readable(self, principal: Principal, env_id: str) -> EnvironmentRecord:
        """The environment, or 404 when it does not exist OR the caller may not read it (same answer)."""
        env = self.core.store.get_environment(env_id)
        if env is None or not principal.may_read(env.context.team, env.context.project):
            raise ApiError(404, "unknown_environment", f"env_id: no environment {env_id!r}", "env_id")
        return env

    @staticmethod
    def _actor(principal: Principal, env: EnvironmentRecord) -> Context:
        """The acting user within the environment's attribution (so the decision log scopes it like the environment)."""
        ctx = env.context
        return Context(**{**ctx.dimensions(), "user": principal.user.name}, tags=dict(ctx.tags))

    def _result(self, result: EnvironmentRecord | Denial, status: int = 200) -> dict[str, Any]:
        if isinstance(result, Denial):
            raise refusal(result)
        view = self._view(result)
        if result.state == EnvState.PENDING:
            view["approval"] = {"decision_id": result.decision_id, "bundle_revision": result.bundle_revision,
                                "reason": "the launch waits for an admin's approval (POST …/approve)"}
            return WithStatus(202, view)
        return WithStatus(status, view)

    @staticmethod
    def _launch_scope(principal: Principal, team: str | None, project: str | None) -> tuple[str | None, str | None]:
        scope = principal.scope
        if scope is None:
            return team, project
        if project is not None and project not in scope.projects:  # spend may land only in a project of theirs
            mine = ", ".join(scope.projects) or "none"
            raise ApiError(403, "forbidden_scope", f"project: you may launch for your projects only ({mine}), "
                           f"not {project!r}", "project")
        if team is not None:
            if team not in scope.teams:
                mine = ", ".join(scope.teams) or "none"
                raise ApiError(403, "forbidden_scope", f"team: you may launch for your teams only ({mine}), "
                               f"not {team!r}", "team")
            return team, project
        if len(scope.teams) == 1:
            return scope.teams[0], project
        if len(scope.teams) > 1:
            raise ApiError(400, "missing_field", f"team: you are in several teams ({', '.join(scope.teams)}); "
                           "say which one the environment is for", "team")
        if project is None or project not in scope.projects:  # scoped by projects only
            raise ApiError(403 if project is not None else 400, "forbidden_scope" if project else "missing_field",
                           f"project: you may launch for your projects only ({', '.join(scope.projects)})"
                           + (f", not {project!r}" if project else "; say which one"), "project")
        return None, project

    def _context(self, principal: Principal, body: dict[str, Any]) -> Context:
        tags = body.get("tags") or {}
        if not isinstance(tags, dict):
            raise ApiError(400, "invalid_field", "tags: expected an object of name to value", "tags")
        for name in _BOUND:
            if name in tags:
                raise ApiError(400, "invalid_field", f"tags.{name}: set by the body field `{name}`" if name in
                               ("team", "project") else f"tags.{name}: always the launching user", f"tags.{name}")
        team, project = self._launch_scope(principal, _optional_text(body, "team"), _optional_text(body, "project"))
        values: dict[str, Any] = {**tags, "team": team, "project": project, "owner": principal.user.name,
                                  "user": principal.user.name}
        try:
            return Context.from_mapping(values, source="tags")
        except InvalidAttribute as exc:
            raise ApiError(400, "invalid_field", str(exc), exc.source) from None

    # -- handlers -----------------------------------------------------------------------------------
    async def list(self, call: Call) -> dict[str, Any]:
        p = call.params
        query = EnvironmentQuery(states=p["status"] or (), team=p["team"], blueprint=p["blueprint"],
                                 scope=call.principal.scope, limit=p["limit"])
        found = await run_in_threadpool(self.core.store.query_environments, query)
        return {"environments": [self._view(e) for e in found]}

    async def show(self, call: Call) -> dict[str, Any]:
        env_id = call.params["env_id"]

        def load() -> dict[str, Any]:
            view = self._view(self._readable(call.principal, env_id))
            view["transitions"] = [{"ts": t.ts.isoformat(), "from": t.from_state, "to": t.to_state, "reason": t.reason,
                                    "decision_id": t.decision_id}
                                   for t in self.core.store.environment_transitions(env_id)]
            return view

        return await run_in_threadpool(load)

    async def launch(self, call: Call) -> dict[str, Any]:
        body = _object(call.body, "blueprint, inputs, tags, team, project, ttl")
        unknown = sorted(set(body) - set(LAUNCH_BODY["properties"]))
        if unknown:
            raise ApiError(400, "invalid_field", f"{unknown[0]}: not a field of the launch body (fields: "
                           f"{', '.join(LAUNCH_BODY['properties'])})", unknown[0])
        blueprint = body.get("blueprint")
        if not isinstance(blueprint, str) or not blueprint:
            raise ApiError(400, "invalid_field", "blueprint: required, the name of a blueprint (GET "
                           "/api/v1/blueprints)", "blueprint")
        inputs = body.get("inputs") or {}
        if not isinstance(inputs, dict):
            raise ApiError(400, "invalid_field", "inputs: expected an object of input name to value", "inputs")
        ttl = _duration(body.get("ttl"), "ttl")
        ctx = self._context(call.principal, body)
        result = await run_in_threadpool(self.core.launch, ctx, blueprint, inputs, ttl)
        return self._result(result, 201)

    async def extend(self, call: Call) -> dict[str, Any]:
        by = _duration(_object(call.body, "by").get("by"), "by")
        env_id = call.params["env_id"]

        def act() -> EnvironmentRecord | Denial:
            env = self._readable(call.principal, env_id)
            return self.core.extend(env_id, self._actor(call.principal, env), by)

        return self._result(await run_in_threadpool(act))

    async def teardown(self, call: Call) -> dict[str, Any]:
        env_id = call.params["env_id"]
        _object(call.body, "no fields")

        def act() -> EnvironmentRecord | Denial:
            env = self._readable(call.principal, env_id)
            return self.core.teardown(env_id, f"torn down by {call.principal.user.name}",
                                      self._actor(call.principal, env))

        return self._result(await run_in_threadpool(act))

    async def approve(self, call: Call) -> dict[str, Any]:
        env_id = call.params["env_id"]

        def act() -> EnvironmentRecord | Denial:
            return self.core.approve(env_id, self._actor(call.principal, self._readable(call.principal, env_id)))

        return self._result(await run_in_threadpool(act))

    async def reject(self, call: Call) -> dict[str, Any]:
        reason = _object(call.body, "reason").get("reason") or ""
        if not isinstance(reason, str):
            raise ApiError(400, "invalid_field", f"reason: expected a string, got {reason!r}", "reason")
        env_id = call.params["env_id"]

        def act() -> EnvironmentRecord | Denial:
            env = self._readable(call.principal, env_id)
            return self.core.reject(env_id, self._actor(call.principal, env), reason)

        return self._result(await run_in_threadpool(act))


