"""`GET /api/v1/slos`: every economic SLO of the bundle with its current value, target and breach state.

The current value is measured now (`core.slo.measure`, the same numbers the SLO monitor
evaluates); the stored state (`slo_state`, written by the monitor) adds since when it is
breached and the actions in force.

Scoping (developer, viewer): an SLO is shown only when its `scope` names a team or a project
the caller may read (`Principal.may_read(scope.team, scope.project)`). An SLO whose scope names
neither (org-wide, or only an agent/model) measures every team's spend, so — like an org-wide
budget — it is shown to admin and finance only. Put `team:` in an SLO's scope to show it to a team.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from costplane.api.principal import Principal
from costplane.api.table import Call
from costplane.app import Application
from costplane.core.slo import measure
from costplane.ledger.runtypes import SloState
from costplane.money import format_usd
from costplane.policy.sloschema import SloSpec

__all__ = ["SLOS_SCHEMA", "slo_views", "slo_visible", "slos_handler"]

_USD = {"type": ["string", "null"], "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
SLOS_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["slos", "bundle_revision"],
    "properties": {"bundle_revision": {"type": "string"}, "slos": {"type": "array", "items": {
        "type": "object", "required": ["name", "outcome", "target_usd", "breached"], "properties": {
            "name": {"type": "string"}, "description": {"type": "string"}, "outcome": {"type": "string"},
            "scope": {"type": "object", "additionalProperties": {"type": "string"}},
            "window_seconds": {"type": "integer"}, "min_outcomes": {"type": "integer"},
            "target_usd": _USD, "value_usd": _USD, "cost_usd": _USD, "outcomes": {"type": "string"},
            "breached": {"type": "boolean"}, "breached_since": {"type": ["string", "null"], "format": "date-time"},
            "evaluated_at": {"type": ["string", "null"], "format": "date-time"},
            "actions": {"type": "array", "items": {"type": "object"}}}}}},
}


def slo_visible(principal: Principal, spec: SloSpec) -> bool:
    scope = spec.scope
    if principal.scope is None:
        return True
    if "team" not in scope and "project" not in scope:
        return False
    return principal.may_read(scope.get("team"), scope.get("project"))


def _view(spec: SloSpec, numbers: dict[str, Any], state: SloState | None) -> dict[str, Any]:
    per = numbers["cost_per_outcome_nano"]
    return {"name": spec.name, "description": spec.description, "outcome": spec.outcome, "scope": dict(spec.scope),
            "window_seconds": spec.window_seconds, "min_outcomes": spec.min_outcomes,
            "target_usd": format_usd(spec.objective_nano), "value_usd": None if per is None else format_usd(per),
            "cost_usd": format_usd(numbers["cost_nano"]), "outcomes": numbers["outcomes"],
            "breached": bool(numbers["breached"]),
            "breached_since": state.since.isoformat() if state is not None and state.breached and state.since else None,
            "evaluated_at": state.updated_at.isoformat() if state is not None else None,
            "actions": [dict(a) for a in state.actions] if state is not None else []}


def slo_views(application: Application, principal: Principal, now: datetime) -> list[dict[str, Any]]:
    """The visible SLOs, measured now (blocking)."""
    specs = [s for s in application.bundle.engine.bundle.slos if slo_visible(principal, s)]
    states = {s.name: s for s in application.store.slo_states()} if specs else {}
    return [_view(spec, measure(application.store, spec, now), states.get(spec.name)) for spec in specs]


def slos_handler(application: Application) -> Any:
    async def handler(call: Call) -> dict[str, Any]:
        rows = await run_in_threadpool(slo_views, application, call.principal, datetime.now(UTC))
        return {"bundle_revision": application.bundle.revision, "slos": rows}

    return handler
