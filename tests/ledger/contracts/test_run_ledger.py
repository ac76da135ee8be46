"""Conformance of `RunLedger`: run trees (idempotent upserts), the activity of runs, outcomes and
SLO state."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from ledger_helpers import NOW, decision, event

from costplane.attribution.context import Context
from costplane.ledger import Store
from costplane.ledger.runtypes import SloState

from .records import outcome, run_node


def test_run_tree_nodes_upsert_and_their_events_insert_once(store: Store) -> None:
    root = run_node("r1")
    step = run_node("r1", "r1/s1", parent="r1", kind="step", at=NOW + timedelta(seconds=1))
    ev = event(42, ctx=Context(team="ml", run="r1"))
    store.record_nodes([root, step], [ev])
    store.record_nodes([replace(step, status="ok", ended_at=NOW + timedelta(seconds=3))], [ev])  # same event again
    nodes = {n.id: n for n in store.run_nodes("r1")}
    assert set(nodes) == {"r1", "r1/s1"} and nodes["r1/s1"].status == "ok" and nodes["r1/s1"].parent_id == "r1"
    assert [e.id for e in store.run_events("r1")] == [ev.id]
    assert [n.id for n in store.run_roots()] == ["r1"]
    assert store.run_roots(since=NOW + timedelta(hours=1)) == []


def test_nested_runs_are_members_of_their_root(store: Store) -> None:
    store.record_nodes([run_node("root"), run_node("root", "child", parent="root", kind="agent")])
    assert store.run_members(["root", "alone"]).get("root") == ["child"]
    assert not store.run_members(["alone"]).get("alone")


def test_run_activity_aggregates_events_and_admissions(store: Store) -> None:
    ctx = Context(team="ml", run="busy", agent="bot")
    store.record_event(event(100, ctx=ctx, ts=NOW))
    store.record_event(event(50, ctx=ctx, ts=NOW + timedelta(seconds=30)))
    store.record_decision(decision(ctx=ctx, ts=NOW))
    store.record_decision(decision(effect="observed", ctx=ctx, ts=NOW + timedelta(minutes=5)))
    (busy,) = store.run_activity(runs=["busy"])
    assert (busy.run, busy.events, busy.cost_nano, busy.decisions, busy.agent) == ("busy", 2, 150, 1, "bot")
    assert busy.last_at == NOW + timedelta(seconds=30)  # the observed decision is no admission


def test_outcomes_are_idempotent_and_filtered(store: Store) -> None:
    o = outcome(value="2.50", at=NOW, run="r1")
    assert store.record_outcome(o) is True and store.record_outcome(o) is False
    other = outcome("lead_won", at=NOW + timedelta(hours=1))
    store.record_outcome(other)
    assert [x.id for x in store.list_outcomes(outcome="ticket_resolved")] == [o.id]
    assert [x.id for x in store.list_outcomes(since=NOW + timedelta(minutes=1))] == [other.id]
    assert [x.id for x in store.list_outcomes(until=NOW + timedelta(minutes=1))] == [o.id]
    assert store.list_outcomes(outcome="ticket_resolved")[0].value == Decimal("2.50")


def test_slo_state_last_writer_wins(store: Store) -> None:
    ok = SloState(name="cost-per-ticket", breached=False, updated_at=NOW, scope={"team": "ml"})
    store.put_slo_state(ok)
    breached = replace(ok, breached=True, updated_at=NOW + timedelta(minutes=1), since=NOW,
                       measured={"cost_per_outcome_usd": "1.20"}, actions=({"effect": "route", "model": "mini"},))
    store.put_slo_state(breached)
    assert store.slo_states() == [breached]
