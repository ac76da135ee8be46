"""Row ⇄ record conversion shared by the SQLite and PostgreSQL stores.

Both dialects store the same columns with the same meaning:

* times are integers of **microseconds since the Unix epoch, UTC** (BIGINT), so
  time buckets are integer arithmetic and the SQL is the same on both;
* money is integer nano-USD (BIGINT);
* structured values (tags, claims, decision input/result, key attributes) are
  JSON — TEXT in SQLite, JSONB in PostgreSQL (read back either as text or as
  already-decoded values, `load_json` accepts both).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from costplane.attribution.context import DIMENSIONS, Context
from costplane.ledger.store import CachedResponse
from costplane.ledger.types import BudgetClaim, CostEvent, DecisionRecord, KeyRecord, Reservation
from costplane.pricing.types import TokenUsage
from costplane.pricing.usagecodec import usage_extras, with_extras

__all__ = [
    "CACHE_COLUMNS",
    "DECISION_COLUMNS",
    "EVENT_COLUMNS",
    "EVENT_READ_COLUMNS",
    "EVENT_WRITE_COLUMNS",
    "KEY_COLUMNS",
    "LINK_COLUMNS",
    "QUERY_COLUMNS",
    "RESERVATION_COLUMNS",
    "SUPERSEDED_KEY",
    "cache_to_row",
    "claims_from_json",
    "claims_to_json",
    "column_list",
    "decision_to_row",
    "dump_json",
    "event_to_row",
    "event_to_row_with_ids",
    "from_us",
    "key_to_row",
    "load_json",
    "reservation_to_row",
    "row_to_cache",
    "row_to_decision",
    "row_to_event",
    "row_to_key",
    "row_to_reservation",
    "to_us",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

EVENT_COLUMNS: tuple[str, ...] = (
    "id", "ts", *DIMENSIONS, "key_id", "tags",
    "provider", "model", "requested_model", "kind", "endpoint", "status",
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
    "unit_prices", "cost_nano", "saved_nano",
    "decision_id", "reservation_id", "latency_ms", "price_flagged", "request_hash",
)  # fmt: skip

#: The ids that find the same call seen twice (schema_calls). Not in EVENT_COLUMNS (the columns of
#: every schema since v1, and of the v3 server-side functions' frozen row): the ledger writes
#: (settle, record_event, record_spend) insert them with the event once the schema has them (v13).
LINK_COLUMNS: tuple[str, ...] = ("response_id", "trace_id", "span_id")
#: what the event reads select; `row_to_event` also accepts rows of EVENT_COLUMNS only
EVENT_READ_COLUMNS: tuple[str, ...] = (*EVENT_COLUMNS, *LINK_COLUMNS)
#: what the ledger's own inserts write (schema v13 on): the event with its call ids
EVENT_WRITE_COLUMNS: tuple[str, ...] = EVENT_READ_COLUMNS

RESERVATION_COLUMNS: tuple[str, ...] = (
    "id", "status", "created_at", "expires_at", "decision_id", "key_id", "claims",
)  # fmt: skip

DECISION_COLUMNS: tuple[str, ...] = (
    "id", "ts", "hook", "effect", "bundle_revision", "reason", "status_code", "key_id",
    "context", "team", "agent", "run", "input", "result", "policies", "budgets",
)  # fmt: skip

KEY_COLUMNS: tuple[str, ...] = (
    "id", "secret_hash", "prefix", "name", "attributes", "created_at", "expires_at", "revoked_at",
)  # fmt: skip

CACHE_COLUMNS: tuple[str, ...] = (
    "request_hash", "body", "content_type", "model", "provider", "cost_nano", "usage_json",
    "created_at", "expires_at",
)  # fmt: skip

#: Names accepted by `Store.spend(group_by=…, where=…)` → the (quoted) column they read.
QUERY_COLUMNS: Mapping[str, str] = {
    **{name: f'"{name}"' for name in DIMENSIONS},
    "model": "model",
    "provider": "provider",
    "kind": "kind",
    "status": "status",
    "key": "key_id",
}


def column_list(columns: Sequence[str]) -> str:
    """Comma-separated, double-quoted column names (`user` is reserved in PostgreSQL)."""
    return ", ".join(f'"{name}"' for name in columns)


# -- scalars ------------------------------------------------------------------------


def to_us(value: datetime) -> int:
    """An instant as integer microseconds since the epoch (UTC). Naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    """Inverse of `to_us`: an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=int(value))


def _opt_us(value: datetime | None) -> int | None:
    return None if value is None else to_us(value)


def _opt_dt(value: int | None) -> datetime | None:
    return None if value is None else from_us(value)


_JSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def dump_json(value: Any) -> str:
    """Compact JSON with sorted keys (a stable form); values JSON cannot hold are written as text."""
    return orjson.dumps(value, option=_JSON_OPTIONS, default=str).decode()


def load_json(value: Any) -> Any:
    """Decode a JSON column: text (SQLite) or an already-decoded value (PostgreSQL JSONB)."""
    if value is None:
        return None
    if isinstance(value, str | bytes | bytearray):
        return orjson.loads(value)
    return value


def _str_map(value: Any) -> dict[str, str]:
    data = load_json(value) or {}
    return {str(k): str(v) for k, v in dict(data).items()}


# -- context ------------------------------------------------------------------------


def _context_to_json(ctx: Context) -> str:
    data: dict[str, Any] = dict(ctx.dimensions())
    if ctx.tags:
        data["tags"] = dict(ctx.tags)
    if ctx.key_id is not None:
        data["key_id"] = ctx.key_id
    return dump_json(data)


def _context_from_json(value: Any) -> Context:
    data = dict(load_json(value) or {})
    dims = {name: data[name] for name in DIMENSIONS if data.get(name) is not None}
    return Context(**dims, tags=_str_map(data.get("tags")), key_id=data.get("key_id"))


# -- cost events --------------------------------------------------------------------


#: Key of the `unit_prices` JSON that carries the usage beyond the five token columns (billed
#: units such as 1-hour cache writes, audio tokens, web searches, and the served tier/batch
#: conditions). Additive: rows without it read back as before.
_USAGE_KEY = "_usage"
#: Key of the `unit_prices` JSON of a superseded event (the same call counted by the gateway,
#: ledger/calls.py): what it held before (cost, status, tokens, rates, the superseding event).
SUPERSEDED_KEY = "_superseded"


def _prices_json(event: CostEvent) -> str:
    data: dict[str, Any] = dict(event.unit_prices)
    extras = usage_extras(event.usage)
    if extras:
        data[_USAGE_KEY] = extras
    return dump_json(data)


def _usage(tokens: TokenUsage, extras: Mapping[str, Any]) -> TokenUsage:
    """The stored usage with its extra units; a unit this version's price data does not know
    (a row written with newer data) is dropped rather than making the row unreadable."""
    try:
        return with_extras(tokens, extras.get("units"), extras.get("conditions"))
    except ValueError:
        return tokens


def event_to_row(event: CostEvent) -> tuple[Any, ...]:
    ctx, usage = event.context, event.usage
    return (
        event.id, to_us(event.ts), *(getattr(ctx, name) for name in DIMENSIONS), ctx.key_id,
        dump_json(dict(ctx.tags)),
        event.provider, event.model, event.requested_model, event.kind, event.endpoint, event.status,
        usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens,
        usage.reasoning_tokens,
        _prices_json(event), int(event.cost_nano), int(event.saved_nano),
        event.decision_id, event.reservation_id, int(event.latency_ms), bool(event.price_flagged),
        event.request_hash,
    )  # fmt: skip


def event_to_row_with_ids(event: CostEvent) -> tuple[Any, ...]:
    """`event_to_row` followed by the call ids (`EVENT_WRITE_COLUMNS`)."""
    return (*event_to_row(event), event.response_id, event.trace_id, event.span_id)


def row_to_event(row: Sequence[Any]) -> CostEvent:
    n = len(DIMENSIONS)
    dims = {name: row[2 + i] for i, name in enumerate(DIMENSIONS) if row[2 + i] is not None}
    ctx = Context(**dims, tags=_str_map(row[3 + n]), key_id=row[2 + n])
    (provider, model, requested, kind, endpoint, status,
     tin, tout, tcr, tcw, treason, prices, cost, saved,
     decision_id, reservation_id, latency, flagged, request_hash) = row[4 + n:23 + n]  # fmt: skip
    response_id, trace_id, span_id = (*row[23 + n:26 + n], None, None, None)[:3]
    prices_map = dict(load_json(prices) or {})
    extras = prices_map.pop(_USAGE_KEY, None) or {}
    prices_map.pop(SUPERSEDED_KEY, None)
    if not isinstance(extras, dict):
        extras = {}
    return CostEvent(
        id=row[0],
        ts=from_us(row[1]),
        context=ctx,
        provider=provider,
        model=model,
        cost_nano=int(cost),
        kind=kind,
        endpoint=endpoint,
        usage=_usage(TokenUsage(int(tin), int(tout), int(tcr), int(tcw), int(treason)), extras),
        unit_prices=_str_map(prices_map),
        saved_nano=int(saved),
        decision_id=decision_id,
        reservation_id=reservation_id,
        latency_ms=int(latency),
        status=status,
        price_flagged=bool(flagged),
        request_hash=request_hash,
        requested_model=requested,
        response_id=response_id,
        trace_id=trace_id,
        span_id=span_id,
    )


# -- reservations -------------------------------------------------------------------

_CLAIM_FIELDS = ("budget", "partition", "bucket", "window_start", "amount_nano",
                 "limit_nano", "limit_calls", "limit_concurrent", "hard")  # fmt: skip


def claims_to_json(claims: Sequence[BudgetClaim]) -> str:
    return dump_json([[getattr(c, f) for f in _CLAIM_FIELDS] for c in claims])


def claims_from_json(value: Any) -> tuple[BudgetClaim, ...]:
    return tuple(BudgetClaim(*item) for item in load_json(value) or [])


def reservation_to_row(res: Reservation) -> tuple[Any, ...]:
    return (res.id, res.status, to_us(res.created_at), to_us(res.expires_at), res.decision_id,
            res.key_id, claims_to_json(res.claims))  # fmt: skip


def row_to_reservation(row: Sequence[Any]) -> Reservation:
    return Reservation(
        id=row[0],
        status=row[1],
        created_at=from_us(row[2]),
        expires_at=from_us(row[3]),
        decision_id=row[4],
        key_id=row[5],
        claims=claims_from_json(row[6]),
    )


# -- decisions ----------------------------------------------------------------------


def decision_to_row(dec: DecisionRecord) -> tuple[Any, ...]:
    ctx = dec.context
    return (
        dec.id, to_us(dec.ts), dec.hook, dec.effect, dec.bundle_revision, dec.reason,
        int(dec.status_code), dec.key_id, _context_to_json(ctx), ctx.team, ctx.agent, ctx.run,
        dump_json(dict(dec.input)), dump_json(dict(dec.result)),
        dump_json(list(dec.policies)), dump_json(list(dec.budgets)),
    )  # fmt: skip


def row_to_decision(row: Sequence[Any]) -> DecisionRecord:
    return DecisionRecord(
        id=row[0],
        ts=from_us(row[1]),
        hook=row[2],
        effect=row[3],
        bundle_revision=row[4],
        reason=row[5],
        status_code=int(row[6]),
        key_id=row[7],
        context=_context_from_json(row[8]),
        input=dict(load_json(row[12]) or {}),
        result=dict(load_json(row[13]) or {}),
        policies=tuple(load_json(row[14]) or ()),
        budgets=tuple(load_json(row[15]) or ()),
    )


# -- keys and cache -------------------------------------------------------------------


def key_to_row(key: KeyRecord) -> tuple[Any, ...]:
    return (key.id, key.secret_hash, key.prefix, key.name, dump_json(dict(key.attributes)),
            to_us(key.created_at), _opt_us(key.expires_at), _opt_us(key.revoked_at))  # fmt: skip


def row_to_key(row: Sequence[Any]) -> KeyRecord:
    return KeyRecord(
        id=row[0],
        secret_hash=row[1],
        prefix=row[2],
        name=row[3],
        attributes=_str_map(row[4]),
        created_at=from_us(row[5]),
        expires_at=_opt_dt(row[6]),
        revoked_at=_opt_dt(row[7]),
    )


def cache_to_row(entry: CachedResponse) -> tuple[Any, ...]:
    return (entry.request_hash, bytes(entry.body), entry.content_type, entry.model, entry.provider,
            int(entry.cost_nano), entry.usage_json, to_us(entry.created_at),
            to_us(entry.expires_at))  # fmt: skip


def row_to_cache(row: Sequence[Any]) -> CachedResponse:
    return CachedResponse(
        request_hash=row[0],
        body=bytes(row[1]),
        content_type=row[2],
        model=row[3],
        provider=row[4],
        cost_nano=int(row[5]),
        usage_json=row[6],
        created_at=from_us(row[7]),
        expires_at=from_us(row[8]),
    )
