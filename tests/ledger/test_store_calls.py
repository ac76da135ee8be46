"""Counted once at the store: a gateway event and an OTLP event of the same call (same response
id, or same trace id and span id) end as one counted event, whichever arrives first — on SQLite
and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence

from ledger_helpers import NOW, claim, event, reserve

from costplane.ledger import BudgetClaim, CostEvent, Store
from costplane.ledger.types import CallIds
from costplane.pricing.types import TokenUsage

TRACE, PARENT = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
B = claim("b", 0, limit_nano=10**9)


def claims_for(_: CostEvent, names: Sequence[str] | None) -> Sequence[BudgetClaim]:
    return [B]


def ids(event: CostEvent) -> CallIds:
    return CallIds(event.response_id, event.trace_id, event.span_id)


def spent(store: Store) -> int:
    return store.claim_states([B])[0].spent_nano


def total(store: Store) -> int:
    return sum(row.cost_nano for row in store.spend())


def gateway_call(store: Store, cost: int, **ids: str) -> CostEvent:
    res, result = reserve(store, [claim("b", 5000, limit_nano=10**9)])
    assert result.ok
    gw = event(cost, rid=res.id, decision_id=res.decision_id, usage=TokenUsage(100, 20), **ids)
    store.settle(res.id, gw)
    return gw


def span_event(cost: int, span_id: str, **ids: str) -> CostEvent:
    return event(cost, eid=f"otel-{TRACE}-{span_id}", trace_id=TRACE, span_id=span_id,
                 usage=TokenUsage(100, 20), **ids)


def test_ids_round_trip_and_lookup(store: Store) -> None:
    gw = gateway_call(store, 700, response_id="chatcmpl-1", trace_id=TRACE, span_id=PARENT)
    written = store.get_event(gw.id)  # the settlement's own INSERT wrote the ids: no later UPDATE
    assert written is not None and (written.response_id, written.trace_id, written.span_id) == ("chatcmpl-1", TRACE,
                                                                                               PARENT)
    assert store.link_call(gw.id, ids(gw), claims_for) == []
    assert store.link_call("no-such-event", ids(gw), claims_for) == []
    stored = store.get_event(gw.id)
    assert stored is not None and (stored.response_id, stored.trace_id, stored.span_id) == ("chatcmpl-1", TRACE,
                                                                                            PARENT)
    assert store.find_gateway_event("chatcmpl-1", None) == stored
    assert store.find_gateway_event(None, TRACE, ["aaaaaaaaaaaaaaaa", PARENT]) == stored
    assert store.find_gateway_event("chatcmpl-2", TRACE, ["aaaaaaaaaaaaaaaa"]) is None
    assert store.gateway_calls(["chatcmpl-1", "chatcmpl-2"], [TRACE]) == {("response", "chatcmpl-1"): gw.id,
                                                                          ("span", TRACE + PARENT): gw.id}


def test_span_first_is_superseded_when_the_gateway_event_arrives(store: Store) -> None:
    span = span_event(650, "1111111111111111", response_id="chatcmpl-9")
    assert store.record_event(span, [B]) and store.link_call(span.id, ids(span), claims_for) == []
    assert spent(store) == 650 and total(store) == 650
    gw = gateway_call(store, 700, response_id="chatcmpl-9", trace_id=TRACE, span_id=PARENT)
    # the settlement superseded the span's event in its own transaction, from the rows it was counted on
    assert spent(store) == 700 and total(store) == 700  # budget counters and spend queries alike
    assert store.link_call(gw.id, ids(gw), claims_for) == []
    old = store.get_event(span.id)
    assert old is not None and old.status == "superseded" and old.cost_nano == 0 and old.usage.input_tokens == 0
    assert store.link_call(gw.id, ids(gw), claims_for) == [] and spent(store) == 700  # again: nothing more taken back


def test_span_recorded_in_the_race_is_superseded_by_its_own_link(store: Store) -> None:
    gw = gateway_call(store, 700, trace_id=TRACE, span_id=PARENT)
    store.link_call(gw.id, ids(gw), claims_for)
    span = span_event(650, "2222222222222222")  # the span of the HTTP call's parent: matched by span id
    store.record_event(span, [B])
    assert store.link_call(span.id, ids(span), claims_for, ["2222222222222222", PARENT]) == [(span.id, gw.id)]
    assert spent(store) == 700 and total(store) == 700


def test_unrelated_span_counts(store: Store) -> None:
    gw = gateway_call(store, 700, response_id="chatcmpl-a", trace_id=TRACE, span_id=PARENT)
    store.link_call(gw.id, ids(gw), claims_for)
    span = span_event(650, "3333333333333333", response_id="chatcmpl-b")
    store.record_event(span, [B])
    assert store.link_call(span.id, ids(span), claims_for) == []
    assert spent(store) == 1350 and total(store) == 1350


def test_untouched_events_read_back_without_ids(store: Store) -> None:
    plain = event(5)
    store.record_event(plain)
    got = store.get_event(plain.id)
    assert got is not None and (got.response_id, got.trace_id, got.span_id) == (None, None, None)
    _ = NOW


def test_rollup_update_trigger_skips_call_id_writes(store: Store) -> None:
    """Schema v14: writing a call's ids does not re-add the row to the rollups; superseding does
    (the spend totals above); the trigger names every column of an event but the ids."""
    if store.dialect == "sqlite":  # type: ignore[attr-defined]
        sql = store._read(lambda tx: tx.one(  # type: ignore[attr-defined]
            "SELECT sql FROM sqlite_master WHERE name = 'cost_events_rollup_upd'"))[0]
    else:
        sql = store._read(lambda tx: tx.one(  # type: ignore[attr-defined]
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = 'cost_events_rollup'"
            " AND tgrelid = 'cost_events'::regclass"))[0]
    assert "UPDATE OF" in sql and "cost_nano" in sql
    assert "response_id" not in sql and "span_id" not in sql
