"""`GET /api/v1/decisions`: the decisions log, filtered by effect, policy, key and time, newest
first and paged; a developer or viewer sees only decisions they may read (team or project).

Paging is keyset paging on the sort key (ts, id): `next_cursor` encodes the last row returned
and the next page asks for rows strictly older. Decisions inserted meanwhile (newer, so
before the first page) never shift or repeat rows of later pages, unlike OFFSET paging.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from costplane.api.errors import ApiError
from costplane.api.redact import bundle_relative
from costplane.api.table import Call, Param
from costplane.ledger import codec
from costplane.ledger.store import Store
from costplane.ledger.types import DecisionRecord
from costplane.ledger.usertypes import DecisionQuery

__all__ = ["DECISIONS_PARAMS", "DECISIONS_SCHEMA", "decisions_handler", "decode_cursor", "encode_cursor"]

DECISIONS_PARAMS: tuple[Param, ...] = (
    Param("effect", "string", "final effect: allow, deny, route, mutate, …"),
    Param("policy", "string", "only decisions this policy matched"),
    Param("key", "string", "only decisions made for this virtual key id"),
    Param("since", "date-time", "decisions at or after this instant"),
    Param("until", "date-time", "decisions before this instant"),
    Param("limit", "integer", "at most this many per page, newest first", minimum=1, maximum=1000, default=100),
    Param("cursor", "string", "`next_cursor` of the previous page (opaque)"),
)
DECISIONS_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["decisions", "next_cursor"],
    "properties": {"decisions": {"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "string"}, "ts": {"type": "string", "format": "date-time"}, "hook": {"type": "string"},
        "effect": {"type": "string"}, "reason": {"type": "string"}, "status_code": {"type": "integer"},
        "bundle_revision": {"type": "string"}, "key_id": {"type": ["string", "null"]},
        "context": {"type": "object"}, "policies": {"type": "array", "items": {"type": "string"}},
        "budgets": {"type": "array", "items": {"type": "string"}}}}},
        "next_cursor": {"type": ["string", "null"], "description": "pass as `cursor` for the next page; "
                        "null on the last page"}},
}


def encode_cursor(ts_us: int, decision_id: str) -> str:
    return base64.urlsafe_b64encode(f"{ts_us}:{decision_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, _, decision_id = raw.partition(":")
        if not decision_id:
            raise ValueError(raw)
        return int(ts), decision_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "invalid_parameter", "cursor: not a cursor this API returned (use next_cursor as is)",
                       "cursor") from None


def _view(d: DecisionRecord, root: Path | None = None) -> dict[str, Any]:
    return {"id": d.id, "ts": d.ts.isoformat(), "hook": d.hook, "effect": d.effect,
            "reason": bundle_relative(d.reason, (root,)),  # bundle files relative to the bundle, no server path
            "status_code": d.status_code, "bundle_revision": d.bundle_revision, "key_id": d.key_id,
            "context": {**d.context.dimensions(), **dict(d.context.tags)}, "policies": list(d.policies),
            "budgets": list(d.budgets)}


def decisions_handler(store: Store, root: Path | None = None) -> Any:
    """`root`: the bundle directory, so reasons name its files relative to it (else by their last two parts)."""

    async def handler(call: Call) -> dict[str, Any]:
        p = call.params
        limit: int = p["limit"]
        before = decode_cursor(p["cursor"]) if p.get("cursor") else None
        # one row more than asked tells whether there is a next page
        query = DecisionQuery(effect=p["effect"], policy=p["policy"], key_id=p["key"], since=p["since"],
                              until=p["until"], scope=call.principal.scope, limit=limit + 1, before=before)
        rows = await run_in_threadpool(store.query_decisions, query)
        page = rows[:limit]
        last = page[-1] if len(rows) > limit else None
        return {"decisions": [_view(d, root) for d in page],
                "next_cursor": encode_cursor(codec.to_us(last.ts), last.id) if last is not None else None}

    return handler
