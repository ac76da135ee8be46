"""Conformance of `DecisionLog`: decisions appended once by id and read back by every filter."""

from __future__ import annotations

from datetime import timedelta

from ledger_helpers import NOW, decision

from costplane.attribution.context import Context
from costplane.ledger import Store
from costplane.ledger.usertypes import DecisionQuery, Scope


def test_decisions_round_trip_newest_first_by_effect_and_time(store: Store) -> None:
    old = decision(effect="allow", ts=NOW - timedelta(hours=1))
    deny = decision(effect="deny", ts=NOW)
    store.record_decision(old)
    store.record_decision(deny)
    assert store.list_decisions() == [deny, old]
    assert store.list_decisions(effect="deny") == [deny]
    assert store.list_decisions(since=NOW) == [deny]
    assert store.list_decisions(limit=1) == [deny]
    assert store.decision_counts() == {("llm.request", "allow"): 1, ("llm.request", "deny"): 1}


def test_query_decisions_applies_every_filter_and_the_scope(store: Store) -> None:
    ml = decision(effect="deny", ts=NOW, ctx=Context(team="ml"))
    web = decision(effect="deny", ts=NOW + timedelta(seconds=1), ctx=Context(team="web", project="shop"))
    allow = decision(effect="allow", ts=NOW + timedelta(seconds=2), ctx=Context(team="ml"))
    for d in (ml, web, allow):
        store.record_decision(d)
    assert [d.id for d in store.query_decisions(DecisionQuery(effect="deny"))] == [web.id, ml.id]
    assert [d.id for d in store.query_decisions(DecisionQuery(teams=("ml",)))] == [allow.id, ml.id]
    assert store.query_decisions(DecisionQuery(teams=())) == []
    assert [d.id for d in store.query_decisions(DecisionQuery(scope=Scope(projects=("shop",))))] == [web.id]
    assert [d.id for d in store.query_decisions(DecisionQuery(policy="p1", limit=1))] == [allow.id]
    assert [d.id for d in store.query_decisions(DecisionQuery(until=NOW + timedelta(seconds=1)))] == [ml.id]


def test_latest_decision_of_each_run_leaves_observed_spend_out(store: Store) -> None:
    first = decision(ts=NOW, ctx=Context(team="ml", run="r1"))
    last = decision(effect="deny", ts=NOW + timedelta(seconds=5), ctx=Context(team="ml", run="r1"))
    observed = decision(effect="observed", ts=NOW + timedelta(seconds=9), ctx=Context(team="ml", run="r1"))
    for d in (first, last, observed):
        store.record_decision(d)
    latest = store.latest_decisions(["r1", "r2"])
    assert set(latest) == {"r1"} and latest["r1"].id == last.id


def test_decisions(store: Store) -> None:
    for i, effect in enumerate(["allow", "deny", "route", "deny"]):
        store.record_decision(decision(f"d{i}", effect=effect, ts=NOW + timedelta(seconds=i),
                                       ctx=Context(team="ml", run="r1", tags={"a": "b"})))  # fmt: skip
    store.record_decision(decision("d0", effect="allow"))  # same id again: ignored
    assert [d.id for d in store.list_decisions()] == ["d3", "d2", "d1", "d0"]
    assert [d.id for d in store.list_decisions(effect="deny")] == ["d3", "d1"]
    assert [d.id for d in store.list_decisions(since=NOW + timedelta(seconds=2), limit=1)] == ["d3"]
    got = store.list_decisions(effect="route")[0]
    assert got == decision("d2", effect="route", ts=NOW + timedelta(seconds=2),
                           ctx=Context(team="ml", run="r1", tags={"a": "b"}))  # fmt: skip
