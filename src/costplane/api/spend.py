"""`GET /api/v1/spend`: sums of cost by any dimensions and time buckets, scoped to the caller.

A developer or viewer only ever sees events they may read (`Principal.may_read`: their team or
their project): the query is grouped by team and project as well, rows they may not read are
dropped, and the rows are summed back to what was asked for. Asking explicitly for another
team (`?team=`) is refused with 403 naming `team` when the caller has no project scope that
could make some of its events readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from costplane.api.errors import ApiError
from costplane.api.principal import Principal
from costplane.api.table import Call, Param
from costplane.ledger.codec import QUERY_COLUMNS
from costplane.ledger.store import SpendRow, Store
from costplane.money import format_usd

__all__ = ["SPEND_PARAMS", "SPEND_SCHEMA", "scoped_spend", "spend_handler"]

DIMENSIONS: tuple[str, ...] = tuple(QUERY_COLUMNS)

SPEND_PARAMS: tuple[Param, ...] = (
    Param("group_by", "list", "dimensions to group by, comma-separated", enum=DIMENSIONS),
    Param("bucket", "string", "time bucket of each row", enum=("hour", "day")),
    Param("since", "date-time", "events at or after this instant"),
    Param("until", "date-time", "events before this instant"),
    *(Param(name, "string", f"only events whose {name} equals this value") for name in DIMENSIONS),
)

_MONEY = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "description": "exact decimal USD"}
SPEND_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["group_by", "rows", "total_usd"],
    "properties": {
        "group_by": {"type": "array", "items": {"type": "string"}},
        "bucket": {"type": ["string", "null"]},
        "total_usd": _MONEY,
        "rows": {"type": "array", "items": {"type": "object", "properties": {
            "group": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
            "bucket": {"type": ["string", "null"], "format": "date-time"},
            "cost_usd": _MONEY, "saved_usd": _MONEY, "events": {"type": "integer"},
            "input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"}}}},
    },
}


def _merge(rows: Sequence[SpendRow], names: Sequence[str]) -> list[SpendRow]:
    sums: dict[tuple[tuple[str | None, ...], datetime | None], list[int]] = {}
    for row in rows:
        key = (tuple(row.group.get(n) for n in names), row.bucket)
        acc = sums.setdefault(key, [0, 0, 0, 0, 0])
        for i, value in enumerate((row.cost_nano, row.saved_nano, row.events, row.input_tokens, row.output_tokens)):
            acc[i] += value
    return [SpendRow(dict(zip(names, values, strict=True)), bucket, *acc) for (values, bucket), acc in sums.items()]


def scoped_spend(store: Store, principal: Principal, *, group_by: Sequence[str], where: dict[str, str],
                 since: datetime | None, until: datetime | None, bucket: str | None) -> list[SpendRow]:
    """`store.spend` restricted to what the caller may read (blocking)."""
    scope = principal.scope
    if scope is None:
        return store.spend(group_by=group_by, where=where, since=since, until=until, bucket=bucket)
    if "team" in where and where["team"] not in scope.teams and not scope.projects:
        raise ApiError(403, "forbidden_scope", f"team: you may read the spend of {', '.join(scope.teams)} only, "
                       f"not {where['team']!r}", "team")
    inner = list(dict.fromkeys([*group_by, "team", "project"]))
    rows = store.spend(group_by=inner, where=where, since=since, until=until, bucket=bucket)
    return _merge([r for r in rows if principal.may_read(r.group.get("team"), r.group.get("project"))],
                  list(group_by))


def _row(row: SpendRow) -> dict[str, Any]:
    return {"group": dict(row.group), "bucket": row.bucket.isoformat() if row.bucket else None,
            "cost_usd": format_usd(row.cost_nano), "saved_usd": format_usd(row.saved_nano), "events": row.events,
            "input_tokens": row.input_tokens, "output_tokens": row.output_tokens}


def spend_handler(store: Store) -> Any:
    async def handler(call: Call) -> dict[str, Any]:
        p = call.params
        group_by: tuple[str, ...] = p["group_by"] or ()
        where = {name: p[name] for name in DIMENSIONS if p.get(name) is not None}
        rows = await run_in_threadpool(lambda: scoped_spend(
            store, call.principal, group_by=group_by, where=where, since=p["since"], until=p["until"],
            bucket=p["bucket"]))
        rows.sort(key=lambda r: (r.bucket.timestamp() if r.bucket else 0.0, -r.cost_nano))
        total = format_usd(sum(r.cost_nano for r in rows))
        return {"group_by": list(group_by), "bucket": p["bucket"], "total_usd": total, "rows": [_row(r) for r in rows]}

    return handler
