"""`GET /api/v1/decisions`: the decisions log, filtered by effect, policy, key and time; a
developer or viewer sees only decisions whose context team is one of theirs."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from costplane.api.table import Call, Param
from costplane.ledger.store import Store
from costplane.ledger.types import DecisionRecord
from costplane.ledger.usertypes import DecisionQuery

__all__ = ["DECISIONS_PARAMS", "DECISIONS_SCHEMA", "decisions_handler"]

DECISIONS_PARAMS: tuple[Param, ...] = (
    Param("effect", "string", "final effect: allow, deny, route, mutate, …"),
    Param("policy", "string", "only decisions this policy matched"),
    Param("key", "string", "only decisions made for this virtual key id"),
    Param("since", "date-time", "decisions at or after this instant"),
    Param("until", "date-time", "decisions before this instant"),
    Param("limit", "integer", "at most this many, newest first", minimum=1, maximum=1000, default=100),
)
DECISIONS_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["decisions"],
    "properties": {"decisions": {"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "string"}, "ts": {"type": "string", "format": "date-time"}, "hook": {"type": "string"},
        "effect": {"type": "string"}, "reason": {"type": "string"}, "status_code": {"type": "integer"},
        "bundle_revision": {"type": "string"}, "key_id": {"type": ["string", "null"]},
        "context": {"type": "object"}, "policies": {"type": "array", "items": {"type": "string"}},
        "budgets": {"type": "array", "items": {"type": "string"}}}}}},
}


def _view(d: DecisionRecord) -> dict[str, Any]:
    return {"id": d.id, "ts": d.ts.isoformat(), "hook": d.hook, "effect": d.effect, "reason": d.reason,
            "status_code": d.status_code, "bundle_revision": d.bundle_revision, "key_id": d.key_id,
            "context": {**d.context.dimensions(), **dict(d.context.tags)}, "policies": list(d.policies),
            "budgets": list(d.budgets)}


def decisions_handler(store: Store) -> Any:
    async def handler(call: Call) -> dict[str, Any]:
        p = call.params
        query = DecisionQuery(effect=p["effect"], policy=p["policy"], key_id=p["key"], since=p["since"],
                              until=p["until"], teams=call.principal.teams, limit=p["limit"])
        rows = await run_in_threadpool(store.query_decisions, query)
        return {"decisions": [_view(d) for d in rows]}

    return handler
