"""Counted once: the same call seen by the gateway and again as an OTLP span is one cost event.

Cost events carry the ids of their call (schema_calls): the provider's `response_id` and the W3C
`trace_id` / `span_id`. A gateway event (its ids written by the gateway through `link`) and an
OTLP event (id `otel-<trace>-<span>`) of the same call meet on either

* the same `response_id`, or
* the same `trace_id` and a `span_id` among the span ids the OTLP side names for its span (the span
  itself and, within its export batch, its child spans — the HTTP client span that carried the
  `traceparent` the gateway saw).

The gateway's event wins: it was metered from the provider's response. Whichever of the two
arrives second, `link` (one write transaction) makes the OTLP event **superseded**: status
`superseded`, cost and token counts 0 (the originals kept under `unit_prices._superseded`), and
its cost taken back from the budget counters it was added to (`claims_for(event, budgets)`: the
claims of the budgets its recorded decision names — None for an event recorded without one —
recomputed from its context and time, so the same counter rows). The rollup triggers follow the
UPDATE, so every spend query sees the call once. A span that arrives after the gateway's event is
normally not recorded at all (the receiver asks `find_gateway` first: linked); `link` closes the
race where both arrive at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from costplane.ledger import codec
from costplane.ledger.types import BudgetClaim, CallIds, CostEvent

if TYPE_CHECKING:
    from costplane.ledger.queries import Tx

__all__ = ["SUPERSEDED", "ClaimsFor", "find_gateway", "gateway_index", "link", "reconcile", "reconcile_many",
           "remember_claims"]

SUPERSEDED = "superseded"
#: the budget claims an OTLP event was counted against, from its context and time; the second
#: argument names the budgets its decision recorded (None: no decision, every matching budget)
ClaimsFor = Callable[[CostEvent, Sequence[str] | None], Sequence[BudgetClaim]]
Lock = Callable[["Tx", Sequence[tuple[str, str]]], None]

_SELECT = f"SELECT {codec.column_list(codec.EVENT_READ_COLUMNS)} FROM cost_events"
_LIVE = f"status <> '{SUPERSEDED}'"
# OTLP events have ids otel-<trace>-<span> (no LIKE: the PostgreSQL driver reserves '%')
_SPAN, _NOT_SPAN = "substr(id, 1, 5) = 'otel-'", "substr(id, 1, 5) <> 'otel-'"
_SET_IDS = "UPDATE cost_events SET response_id = ?, trace_id = ?, span_id = ? WHERE id = ?"
_SUPERSEDE = (f"UPDATE cost_events SET status = '{SUPERSEDED}', cost_nano = 0, input_tokens = 0, output_tokens = 0,"
              " cache_read_tokens = 0, cache_write_tokens = 0, reasoning_tokens = 0, unit_prices = ?"
              f" WHERE id = ? AND {_LIVE}")
_TAKE_BACK = ('UPDATE budget_counters SET spent_nano = spent_nano - ? WHERE budget = ? AND "partition" = ?'
              " AND bucket = ?")
_REMEMBER = ('INSERT INTO event_claims (event_id, budget, "partition", bucket) VALUES (?, ?, ?, ?)'
             " ON CONFLICT DO NOTHING")
_REMEMBERED = 'SELECT budget, "partition", bucket FROM event_claims WHERE event_id = ?'


def remember_claims(tx: Tx, event_id: str, claims: Sequence[BudgetClaim]) -> None:
    """Keep the counter rows an event observed after the fact was added to (schema v15), so a
    later gateway event of the same call can take its cost back without the policy bundle."""
    rows = sorted({(event_id, c.budget, c.partition, c.bucket) for c in claims})
    if rows:
        tx.many(_REMEMBER, rows)


def find_gateway(tx: Tx, response_id: str | None, trace_id: str | None,
                 span_ids: Sequence[str]) -> CostEvent | None:
    """The gateway's event of a call, by response id, else by trace id and one of `span_ids`."""
    if response_id:
        row = tx.one(f"{_SELECT} WHERE response_id = ? AND {_NOT_SPAN} AND {_LIVE}", (response_id,))
        if row is not None:
            return codec.row_to_event(row)
    if trace_id and span_ids:
        marks = ", ".join("?" for _ in span_ids)
        row = tx.one(f"{_SELECT} WHERE trace_id = ? AND span_id IN ({marks}) AND {_NOT_SPAN}"
                     f" AND {_LIVE} ORDER BY ts LIMIT 1", (trace_id, *span_ids))
        if row is not None:
            return codec.row_to_event(row)
    return None


_CHUNK = 400  # ids per IN list (well under SQLite's and PostgreSQL's parameter limits)


def gateway_index(tx: Tx, response_ids: Sequence[str], trace_ids: Sequence[str]) -> dict[tuple[str, str], str]:
    """The gateway events of a batch's calls in two indexed queries per 400 ids: ("response", id)
    and ("span", trace id + span id) -> event id."""
    found: dict[tuple[str, str], str] = {}
    for start in range(0, len(response_ids), _CHUNK):
        part = response_ids[start:start + _CHUNK]
        marks = ", ".join("?" for _ in part)
        for event_id, response_id in tx.all(f"SELECT id, response_id FROM cost_events WHERE response_id IN ({marks})"
                                            f" AND {_NOT_SPAN} AND {_LIVE} ORDER BY ts", part):
            found.setdefault(("response", response_id), event_id)
    for start in range(0, len(trace_ids), _CHUNK):
        part = trace_ids[start:start + _CHUNK]
        marks = ", ".join("?" for _ in part)
        for event_id, trace_id, span_id in tx.all(
                f"SELECT id, trace_id, span_id FROM cost_events WHERE trace_id IN ({marks}) AND span_id IS NOT NULL"
                f" AND {_NOT_SPAN} AND {_LIVE} ORDER BY ts", part):
            found.setdefault(("span", trace_id + span_id), event_id)
    return found


def _spans_of(tx: Tx, ids: CallIds) -> list[CostEvent]:
    """The live OTLP events of the call of a gateway event with `ids`."""
    found: dict[str, CostEvent] = {}
    if ids.response_id:
        for row in tx.all(f"{_SELECT} WHERE response_id = ? AND {_SPAN} AND {_LIVE}",
                          (ids.response_id,)):
            found.setdefault(row[0], codec.row_to_event(row))
    if ids.trace_id and ids.span_id:
        for row in tx.all(f"{_SELECT} WHERE trace_id = ? AND span_id = ? AND {_SPAN} AND {_LIVE}",
                          (ids.trace_id, ids.span_id)):
            found.setdefault(row[0], codec.row_to_event(row))
    return list(found.values())


def _supersede(tx: Tx, span_event: CostEvent, by: str, claims_for: ClaimsFor | None, lock: Lock | None) -> bool:
    usage = span_event.usage
    kept: dict[str, Any] = {"by": by, "cost_nano": span_event.cost_nano, "status": span_event.status,
                            "tokens": [usage.input_tokens, usage.output_tokens, usage.cache_read_tokens,
                                       usage.cache_write_tokens, usage.reasoning_tokens],
                            "unit_prices": dict(span_event.unit_prices)}
    if tx.exec(_SUPERSEDE, (codec.dump_json({codec.SUPERSEDED_KEY: kept}), span_event.id)) != 1:
        return False  # already superseded (the other side's `link` got there first)
    if not span_event.cost_nano:
        return True
    rows = [(str(b), str(p), int(k)) for b, p, k in tx.all(_REMEMBERED, (span_event.id,))]
    if not rows and claims_for is not None:  # recorded before schema v15: recompute from the bundle
        names: Sequence[str] | None = None
        if span_event.decision_id is not None:
            row = tx.one("SELECT budgets FROM decisions WHERE id = ?", (span_event.decision_id,))
            names = [str(n) for n in codec.load_json(row[0]) or ()] if row is not None else None
        rows = sorted({(c.budget, c.partition, c.bucket) for c in claims_for(span_event, names)})
    if rows:
        if lock is not None:
            lock(tx, sorted({(b, p) for b, p, _ in rows}))
        # only rows that exist: a budget the event was never counted against is left alone. A
        # decrement cannot break a limit, so the gateway's settlement takes no further lock for it.
        tx.many(_TAKE_BACK, [(int(span_event.cost_nano), b, p, k) for b, p, k in rows])
    return True


_PROBE = (f"SELECT id FROM cost_events WHERE response_id = ? AND {_SPAN} AND {_LIVE} UNION ALL"
          f" SELECT id FROM cost_events WHERE trace_id = ? AND span_id = ? AND {_SPAN} AND {_LIVE}")


def reconcile(tx: Tx, event_id: str, ids: CallIds) -> list[tuple[str, str]]:
    """The gateway event `event_id` (just inserted with `ids`) supersedes the live OTLP/SDK events
    of its call already recorded, in the caller's transaction: ONE indexed probe when there are
    none (the common case). Returns the (superseded event id, gateway event id) pairs."""
    if not ids or not tx.all(_PROBE, (ids.response_id, ids.trace_id, ids.span_id)):
        return []
    return [(span.id, event_id) for span in _spans_of(tx, ids) if _supersede(tx, span, event_id, None, None)]


def reconcile_many(tx: Tx, events: Sequence[tuple[str, CallIds]]) -> list[tuple[str, str]]:
    """`reconcile` for a batch of gateway events inserted in the caller's transaction: one indexed
    probe per 400 events finds which of them have live OTLP/SDK events of their call (the common
    case: none), and only those are reconciled one by one."""
    by_response = {ids.response_id for _, ids in events if ids.response_id}
    by_trace = {ids.trace_id for _, ids in events if ids.trace_id and ids.span_id}
    seen: set[tuple[str, str | None]] = set()  # ("response", id) / ("span", trace + span) of live spans
    for kind, values, sql in (("response", sorted(by_response), _PROBE_RESPONSES), ("span", sorted(by_trace),
                                                                                     _PROBE_TRACES)):
        for start in range(0, len(values), _CHUNK):
            part = values[start:start + _CHUNK]
            for response_id, trace_id, span_id in tx.all(sql.format(marks=", ".join("?" for _ in part)), part):
                seen.add((kind, response_id if kind == "response" else f"{trace_id}/{span_id}"))
    out: list[tuple[str, str]] = []
    for event_id, ids in events:
        if ("response", ids.response_id) in seen or ("span", f"{ids.trace_id}/{ids.span_id}") in seen:
            out += reconcile(tx, event_id, ids)
    return out


_PROBE_RESPONSES = ("SELECT response_id, trace_id, span_id FROM cost_events WHERE response_id IN ({marks})"
                    f" AND {_SPAN} AND {_LIVE}")
_PROBE_TRACES = ("SELECT response_id, trace_id, span_id FROM cost_events WHERE trace_id IN ({marks})"
                 f" AND span_id IS NOT NULL AND {_SPAN} AND {_LIVE}")


def link(tx: Tx, event_id: str, ids: CallIds, span_ids: Sequence[str], claims_for: ClaimsFor,
         lock: Lock) -> list[tuple[str, str]]:
    """Write the call ids of event `event_id`, then make the call count once: a gateway event
    supersedes the OTLP events of its call already recorded; an OTLP event whose gateway event
    exists is superseded. Returns the (superseded event id, gateway event id) pairs."""
    if tx.exec(_SET_IDS, (ids.response_id, ids.trace_id, ids.span_id, event_id)) != 1:
        return []  # no such event (e.g. a duplicate span the store skipped)
    if not event_id.startswith("otel-"):
        return [(span.id, event_id) for span in _spans_of(tx, ids)
                if _supersede(tx, span, event_id, claims_for, lock)]
    gateway = find_gateway(tx, ids.response_id, ids.trace_id, span_ids or ([ids.span_id] if ids.span_id else []))
    if gateway is None:
        return []
    row = tx.one(f"{_SELECT} WHERE id = ?", (event_id,))
    if row is not None and _supersede(tx, codec.row_to_event(row), gateway.id, claims_for, lock):
        return [(event_id, gateway.id)]
    return []
