"""The v5 store methods (run nodes, outcomes, SLO state) behave the same on SQLite and PostgreSQL
(the `store` fixture of tests/conftest.py runs each test on both)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costplane.attribution.context import Context
from costplane.ledger import Store
from costplane.ledger.runtypes import OutcomeRecord, RunNode, SloState
from costplane.ledger.types import CostEvent

T0 = datetime(2026, 11, 22, 12, tzinfo=UTC)


def test_nodes_upsert_events_outcomes_and_slo_state(store: Store) -> None:
    ctx = Context(agent="bot", run="r1", tags={"node": "step-1"})
    root = RunNode("r1", "r1", "agent", "bot", T0, context=Context(agent="bot", run="r1"))
    step = RunNode("step-1", "r1", "step", "plan", T0 + timedelta(seconds=1), parent_id="r1", context=ctx)
    event = CostEvent("e1", T0 + timedelta(seconds=2), ctx, "openai", "gpt-4o-mini", 1234)
    store.record_nodes([root, step], [event])
    store.record_nodes([RunNode("r1", "r1", "agent", "bot", T0, ended_at=T0 + timedelta(seconds=5),
                                status="stopped", attributes={"spent_nano": 1234})], [event])  # idempotent
    nodes = {n.id: n for n in store.run_nodes("r1")}
    assert nodes["r1"].status == "stopped" and nodes["r1"].started_at == T0
    assert nodes["r1"].attributes == {"spent_nano": 1234} and nodes["step-1"].parent_id == "r1"
    assert [n.id for n in store.run_roots()] == ["r1"]
    assert [e.id for e in store.run_events("r1")] == ["e1"] and store.count_events() == 1

    outcome = OutcomeRecord("o1", T0, "ticket_resolved", Decimal("1.5"), Context(run="r1", agent="bot"))
    assert store.record_outcome(outcome) and not store.record_outcome(outcome)
    (back,) = store.list_outcomes(outcome="ticket_resolved", since=T0)
    assert back.value == Decimal("1.5") and back.context.run == "r1"
    assert store.list_outcomes(until=T0) == []

    state = SloState("s", True, T0, T0, {"agent": "bot"}, {"cost_nano": 5}, ({"effect": "route", "model": "m"},))
    store.put_slo_state(state)
    store.put_slo_state(SloState("s", False, T0 + timedelta(minutes=1)))
    (saved,) = store.slo_states()
    assert not saved.breached and saved.actions == () and saved.updated_at == T0 + timedelta(minutes=1)
    assert store.schema_version() >= 5
