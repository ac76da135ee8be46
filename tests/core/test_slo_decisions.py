"""An SLO turning breached is logged as a decision of hook slo.breach with the exact request
evaluated; staying breached logs nothing more; the notifications name that decision."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from costplane.attribution.context import Context
from costplane.core.notify import Notification
from costplane.core.slo import SloGate, SloMonitor
from costplane.ledger.store import Store
from costplane.ledger.types import CostEvent
from costplane.policy.bundle import load_bundle
from costplane.policy.engine import PolicyEngine

BUNDLE = """
kind: SLO
name: support-cost-per-ticket
outcome: ticket_resolved
objective: 0.0005 USD
window: {rolling: 1d}
scope: {agent: support-bot}
---
kind: Policy
name: support-to-small-model
on: slo.breach
when: request.slo == "support-cost-per-ticket"
effect: route
set: {model: gpt-4o-mini}
reason: support is over its cost per resolved ticket
---
kind: Policy
name: tell-finops
on: slo.breach
effect: notify
reason: page the FinOps channel
"""


class Notes:
    def __init__(self) -> None:
        self.items: list[Notification] = []

    def notify(self, notification: Notification) -> None:
        self.items.append(notification)


def test_a_breach_is_logged_once_with_the_evaluated_request(store: Store, tmp_path: Path) -> None:
    (tmp_path / "slo.yaml").write_text(BUNDLE)
    engine = PolicyEngine(load_bundle(tmp_path))
    store.record_nodes([], [CostEvent("ev-1", datetime.now(UTC), Context(agent="support-bot", run="r-1"),
                                      "openai", "gpt-4o", 2_000_000)])
    notes = Notes()
    monitor = SloMonitor(store, lambda: engine, notes)
    (state,) = monitor.evaluate()
    assert state.breached
    monitor.evaluate()  # still breached: nothing new is logged or notified
    (decision,) = [d for d in store.list_decisions(limit=50) if d.hook == "slo.breach"]
    assert decision.effect == "breached" and decision.context.agent == "support-bot"
    assert decision.input == {"version": 1, "request": {
        "slo": "support-cost-per-ticket", "outcome": "ticket_resolved", "model": "", "cost_nano": 2_000_000,
        "outcomes": 0, "cost_per_outcome_nano": 2_000_000, "objective_nano": 500_000}}
    assert decision.result["actions"][0]["model"] == "gpt-4o-mini"
    assert "support-to-small-model" in decision.policies
    assert [(n.kind, n.decision_id) for n in notes.items] == [("slo_breach", decision.id), ("policy", decision.id)]


class CountingStore:
    """The store with its SLO state reads counted."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.reads = 0

    def slo_states(self) -> list[Any]:
        self.reads += 1
        return self.store.slo_states()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_only_the_slos_the_bundle_declares_act_and_none_declared_reads_nothing(store: Store, tmp_path: Path) -> None:
    (tmp_path / "slo.yaml").write_text(BUNDLE)
    engine = PolicyEngine(load_bundle(tmp_path))
    store.record_nodes([], [CostEvent("ev-1", datetime.now(UTC), Context(agent="support-bot", run="r-1"),
                                      "openai", "gpt-4o", 2_000_000)])
    (state,) = SloMonitor(store, lambda: engine, Notes()).evaluate()
    assert state.breached and state.actions
    counted = CountingStore(store)
    gate = SloGate(counted)  # type: ignore[arg-type]
    ctx, now = Context(agent="support-bot"), datetime.now(UTC)
    allowed = engine.decide("llm.request", ctx, {"model": "gpt-4o"})[0]
    routed, _ = gate.apply(ctx, "gpt-4o", allowed, now, engine.bundle.slos)
    assert routed.model == "gpt-4o-mini" and counted.reads == 1

    # the SLO leaves the bundle: its stored breached state no longer routes, and nothing is read
    (tmp_path / "slo.yaml").write_text(BUNDLE.split("---", 1)[1])
    without = PolicyEngine(load_bundle(tmp_path))
    assert without.bundle.slos == ()
    gate.refresh()
    kept, throttled = gate.apply(ctx, "gpt-4o", allowed, now, without.bundle.slos)
    assert kept.model == allowed.model and throttled is None and counted.reads == 1
    assert SloMonitor(counted, lambda: without, Notes()).evaluate() == []  # type: ignore[arg-type]
    assert counted.reads == 1
    # a bundle that declares another SLO: the stored state of the removed one still acts on nothing
    other = BUNDLE.replace("support-cost-per-ticket", "another-slo", 1)
    (tmp_path / "slo.yaml").write_text(other)
    renamed = PolicyEngine(load_bundle(tmp_path))
    gate.refresh()
    kept, _ = gate.apply(ctx, "gpt-4o", allowed, now, renamed.bundle.slos)
    assert kept.model == allowed.model and counted.reads == 2
