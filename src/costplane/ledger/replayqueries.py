"""Read queries of policy replay: the decisions log and the cost events in (ts, id) pages,
and the accrued cost of environments. Mixed into `SqlStore` like the other *queries mixins.

Pages are keyset ranges — `ts >= t AND (ts > t OR id > last_id)` — so each page is an index range
scan on `ts` (the `decisions_ts` / `cost_events_ts` indexes) whatever the depth, and memory holds
one page. Decisions are read without their reason or policy/budget lists, their JSON columns as text
(on PostgreSQL too, so a context can be memoised by its text and parsed with orjson):
`replay_decision_rows` returns those rows as they are (`optimize.stream` decodes them into replay's
own records), `replay_decisions` decodes them into `DecisionRecord`s. Events are returned as rows of
`EVENT_FIELDS`: what re-pricing needs, no context of their own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from costplane.attribution.context import DIMENSIONS, Context
from costplane.ledger import codec
from costplane.ledger.queries import Row, Tx
from costplane.ledger.types import DecisionRecord

__all__ = ["DECISION_FIELDS", "EVENT_FIELDS", "ReplayQueries", "decode_context"]

T = TypeVar("T")

_DECISION_SELECT = ("SELECT id, ts, hook, effect, bundle_revision, status_code, key_id, CAST(context AS TEXT),"
                    " CAST(input AS TEXT), CAST(result AS TEXT) FROM decisions")
#: the columns of `replay_decision_rows`, in order (ts in microseconds, JSON columns as text)
DECISION_FIELDS: tuple[str, ...] = ("id", "ts", "effect", "status_code", "context", "input", "result")
_DECISION_ROW_SELECT = ("SELECT id, ts, effect, status_code, CAST(context AS TEXT), CAST(input AS TEXT),"
                        " CAST(result AS TEXT) FROM decisions")
#: the columns of `replay_event_rows`, in order (ts in microseconds): what re-pricing and the join need
EVENT_FIELDS: tuple[str, ...] = (
    "id", "ts", "model", "kind", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
    "reasoning_tokens", "cost_nano", "decision_id", "request_hash", "unit_prices",
)  # fmt: skip
_EVENT_SELECT = f"SELECT {', '.join(EVENT_FIELDS)} FROM cost_events"
_COST_CHUNK = 500  # decision ids per IN (...) list


def _keyset(since: datetime | None, until: datetime | None,
            after: tuple[int, str] | None) -> tuple[list[str], list[Any]]:
    conditions: list[str] = []
    params: list[Any] = []
    start = None if since is None else codec.to_us(since)
    if after is not None and (start is None or after[0] >= start):
        ts = after[0]
        conditions.append("ts >= ? AND (ts > ? OR id > ?)")  # (ts, id) > after, as an index range on ts
        params += [ts, ts, after[1]]
    elif start is not None:
        conditions.append("ts >= ?")
        params.append(start)
    if until is not None:
        conditions.append("ts < ?")
        params.append(codec.to_us(until))
    return conditions, params


def decode_context(value: Any, memo: dict[str, Context]) -> Context:
    """A decision's context column (as `codec` writes it), memoised by its text in `memo`: most
    decisions share a handful of contexts (a key's attributes plus a few headers)."""
    if isinstance(value, str):
        cached = memo.get(value)
        if cached is None:
            cached = memo[value] = _decode_context(codec.load_json(value))
        return cached
    return _decode_context(codec.load_json(value))


def _decode_context(data: Any) -> Context:
    data = dict(data or {})
    dims = {name: str(data[name]) for name in DIMENSIONS if data.get(name) is not None}
    tags = {str(k): str(v) for k, v in dict(data.get("tags") or {}).items()}
    key_id = data.get("key_id")
    return Context(**dims, tags=tags, key_id=None if key_id is None else str(key_id))


def _decision(row: Sequence[Any], memo: dict[str, Context]) -> DecisionRecord:
    return DecisionRecord(
        id=row[0], ts=codec.from_us(row[1]), hook=row[2], effect=row[3], bundle_revision=row[4] or "",
        status_code=int(row[5]), key_id=row[6],
        context=decode_context(row[7], memo),
        input=codec.load_json(row[8]) or {}, result=codec.load_json(row[9]) or {},
    )


def _all_rows(sql: str, params: Sequence[Any]) -> Callable[[Tx], list[Row]]:
    return lambda tx: tx.all(sql, params)


class ReplayQueries(ABC):
    """Keyset pages of decisions and events, and environments' accrued cost, for policy replay."""

    @abstractmethod
    def _read(self, body: Callable[[Tx], T]) -> T: ...

    def replay_decisions(self, hooks: Sequence[str], *, since: datetime | None = None,
                         until: datetime | None = None, after: tuple[datetime, str] | None = None,
                         limit: int = 5000) -> list[DecisionRecord]:
        """Decisions of `hooks` with since <= ts < until, oldest first by (ts, id), strictly after `after`."""
        key = None if after is None else (codec.to_us(after[0]), after[1])
        memo: dict[str, Context] = {}
        return [_decision(r, memo) for r in self._decisions_page(_DECISION_SELECT, hooks, since, until, key, limit)]

    def replay_decision_rows(self, hooks: Sequence[str], *, since: datetime | None = None,
                             until: datetime | None = None, after: tuple[int, str] | None = None,
                             limit: int = 5000) -> list[Row]:
        """`replay_decisions` as rows of `DECISION_FIELDS` (what replay reads); `after` is (ts in
        microseconds, id)."""
        return self._decisions_page(_DECISION_ROW_SELECT, hooks, since, until, after, limit)

    def _decisions_page(self, select: str, hooks: Sequence[str], since: datetime | None, until: datetime | None,
                        after: tuple[int, str] | None, limit: int) -> list[Row]:
        if not hooks:
            return []
        conditions, params = _keyset(since, until, after)
        conditions.append(f"hook IN ({', '.join('?' for _ in hooks)})")
        params += list(hooks)
        sql = f"{select} WHERE {' AND '.join(conditions)} ORDER BY ts, id LIMIT ?"
        return self._read(lambda tx: tx.all(sql, (*params, int(limit))))

    def replay_event_rows(self, *, since: datetime | None = None, until: datetime | None = None,
                          after: tuple[int, str] | None = None, limit: int = 5000) -> tuple[list[Row], Row | None]:
        """Rows of `EVENT_FIELDS` of the events with a decision id, since <= ts < until, oldest first by
        (ts, id), strictly after `after` (ts in microseconds, id); and the last row read, with or without
        a decision id (the next page's `after`), None when fewer than `limit` rows were left."""
        conditions, params = _keyset(since, until, after)
        where = " AND ".join(conditions) if conditions else "1 = 1"
        # the decision filter is applied in Python: in SQL it would stop the ts index serving the order
        sql = f"{_EVENT_SELECT} WHERE {where} ORDER BY ts, id LIMIT ?"
        rows = self._read(lambda tx: tx.all(sql, (*params, int(limit))))
        return [r for r in rows if r[10] is not None], (rows[-1] if len(rows) >= limit else None)

    def environment_costs(self, decision_ids: Sequence[str]) -> dict[str, int]:
        """decision id -> the sum of the `environment` cost events recorded under it (its accruals)."""
        out: dict[str, int] = {}
        ids = sorted(set(decision_ids))
        for start in range(0, len(ids), _COST_CHUNK):
            chunk = ids[start:start + _COST_CHUNK]
            sql = (f"SELECT decision_id, CAST(SUM(cost_nano) AS BIGINT) FROM cost_events WHERE kind = 'environment'"
                   f" AND decision_id IN ({', '.join('?' for _ in chunk)}) GROUP BY decision_id")
            for row in self._read(_all_rows(sql, chunk)):
                out[str(row[0])] = int(row[1])
        return out
