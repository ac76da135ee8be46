"""Conformance of `CostEventLog`: cost events round-trip and list, spend breakdowns (groups,
filters, buckets) equal the events, and a call seen twice (a gateway event and an OTLP event with the
same response id, or trace id and span id) ends as one counted event, whichever arrives first —
its spend taken back in the linking transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
from ledger_helpers import NOW, claim, event, reserve

from costplane.attribution.context import Context
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


def _seed(store: Store) -> None:
    rows = [  # (hour offset, team, user, model, cost)
        (0, "ml", "ann", "gpt-4o", 100),
        (0, "ml", "bob", "gpt-4o-mini", 10),
        (1, "ml", "ann", "gpt-4o", 200),
        (1, "web", None, "gpt-4o", 50),
        (25, "web", "cid", "claude", 7),
    ]
    for i, (hours, team, user, model, cost) in enumerate(rows):
        ctx = Context(team=team, user=user, run=f"run-{i % 2}", tags={"env": "prod"}, key_id="k1")
        store.record_event(event(cost, eid=f"e{i}", ts=NOW + timedelta(hours=hours, minutes=5), ctx=ctx,
                                 model=model, usage=TokenUsage(10, 5), saved_nano=i))  # fmt: skip


def test_spend_breakdowns(store: Store) -> None:
    _seed(store)
    (total,) = store.spend()
    assert (total.cost_nano, total.events, total.input_tokens, total.output_tokens) == (367, 5, 50, 25)
    assert total.saved_nano == 0 + 1 + 2 + 3 + 4 and total.group == {} and total.bucket is None
    by_team = store.spend(group_by=["team"])
    assert [(r.group["team"], r.cost_nano, r.events) for r in by_team] == [("ml", 310, 3), ("web", 57, 2)]
    by_user = store.spend(group_by=["user"], where={"team": "web"})
    assert {r.group["user"]: r.cost_nano for r in by_user} == {None: 50, "cid": 7}
    hourly = store.spend(group_by=["model"], bucket="hour", until=NOW + timedelta(hours=2))
    assert [(r.bucket, r.group["model"], r.cost_nano) for r in hourly] == [
        (NOW, "gpt-4o", 100),
        (NOW, "gpt-4o-mini", 10),
        (NOW + timedelta(hours=1), "gpt-4o", 250),
    ]
    daily = store.spend(bucket="day")
    day0 = NOW.replace(hour=0)
    assert [(r.bucket, r.cost_nano) for r in daily] == [(day0, 360), (day0 + timedelta(days=1), 7)]
    since = store.spend(group_by=["key", "provider"], since=NOW + timedelta(hours=1))
    assert [(r.group, r.cost_nano) for r in since] == [({"key": "k1", "provider": "openai"}, 257)]
    filtered = store.spend(where={"model": "gpt-4o", "user": "ann", "kind": "llm", "status": "ok"})
    assert filtered[0].cost_nano == 300
    assert store.spend(where={"team": "nobody"}) == []


def test_spend_rejects_unknown_names(store: Store) -> None:
    with pytest.raises(ValueError, match="'team; DROP TABLE cost_events'"):
        store.spend(group_by=["team; DROP TABLE cost_events"])
    with pytest.raises(ValueError, match="'colour'"):
        store.spend(where={"colour": "red"})
    with pytest.raises(ValueError, match="'week'"):
        store.spend(bucket="week")


def test_events_round_trip_and_listing(store: Store) -> None:
    ctx = Context(org="o", team="t", project="p", user="u", owner="ow", tier="prod", pipeline="pl",
                  run="r", experiment="x", agent="a", step="s", tool="tl", trace="tr", outcome="oc",
                  tags={"cost_center": "cc-1"}, key_id="key-1")  # fmt: skip
    ev = event(123_456_789, eid="full", ctx=ctx, kind="llm", endpoint="chat.completions",
               usage=TokenUsage(100, 50, 20, 10, 5), unit_prices={"input": "2.5", "output": "10"},
               saved_nano=9, decision_id="d1", latency_ms=321, status="cut", price_flagged=True,
               request_hash="h1", requested_model="gpt-4o-big", ts=NOW)  # fmt: skip
    assert store.record_event(ev)
    assert store.get_event("full") == ev
    assert store.get_event("missing") is None
    _seed(store)
    listed = store.list_events(limit=3)
    assert [e.id for e in listed] == ["e4", "e3", "e2"]  # newest first
    assert [e.id for e in store.list_events(since=NOW + timedelta(hours=2))] == ["e4"]
    assert store.count_events() == 6
