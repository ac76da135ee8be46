"""An SLO turning breached is logged as a decision of hook slo.breach with the exact request
evaluated; staying breached logs nothing more; the notifications name that decision."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from costplane.attribution.context import Context
from costplane.core.notify import Notification
from costplane.core.slo import SloMonitor
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
