"""Acceptance: an economic SLO breach triggers its slo.breach routing policy, and later calls go
to the cheaper model (through the real gateway); the SLO's bundle documents validate with file:line."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

from costplane.attribution.context import Context
from costplane.core.notify import Notification
from costplane.core.slo import SloMonitor
from costplane.ledger.runtypes import OutcomeRecord
from costplane.policy.bundle import load_bundle
from costplane.policy.types import BundleError
from run_harness import Server

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


def _ask(client: openai.OpenAI, agent: str) -> tuple[str, str | None]:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", max_tokens=50, messages=[{"role": "user", "content": f"Resolve ticket for {agent}."}],
        extra_headers={"x-costplane-agent": agent, "x-costplane-run": f"r-{agent}"})
    return raw.parse().model, raw.headers.get("x-costplane-effect")


def test_slo_breach_routes_later_calls_to_the_cheaper_model(make_server: Callable[..., Server]) -> None:
    server = make_server(BUNDLE)
    notes = Notes()
    server.app.core.notifier = notes
    monitor = SloMonitor(server.app.store, lambda: server.app.bundle.engine, notes)
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.key(), max_retries=0)

    assert _ask(client, "support-bot") == ("gpt-4o", None)
    (state,) = monitor.evaluate()
    assert state.breached and state.measured["outcomes"] == "0" and state.actions[0]["model"] == "gpt-4o-mini"
    assert [n.kind for n in notes.items] == ["slo_breach", "policy"]
    assert "SLO 'support-cost-per-ticket' breached" in notes.items[0].message
    server.app.core.slo_gate.refresh()

    assert _ask(client, "support-bot") == ("gpt-4o-mini", "route")  # later calls: the cheaper model
    assert _ask(client, "billing-bot") == ("gpt-4o", None)  # outside the SLO's scope: untouched
    routed = [e for e in server.app.store.run_events("r-support-bot") if e.model == "gpt-4o-mini"]
    assert routed and routed[0].requested_model == "gpt-4o" and routed[0].saved_nano > 0
    (decision,) = [d for d in server.app.store.list_decisions(effect="route")]
    assert "support-to-small-model" in decision.policies and "SLO 'support-cost-per-ticket'" in decision.reason

    # enough resolved tickets bring it back within its objective; the route is lifted
    for i in range(100):
        server.app.store.record_outcome(OutcomeRecord(
            f"o{i}", state.updated_at, "ticket_resolved", Decimal(1),
            Context(agent="support-bot", run="r-support-bot")))
    (state,) = monitor.evaluate()
    assert not state.breached and state.actions == ()
    server.app.core.slo_gate.refresh()
    assert _ask(client, "support-bot") == ("gpt-4o", None)
    listed = httpx.get(f"{server.url}/v1/slos", headers={"authorization": f"Bearer {server.key()}"}, timeout=10)
    assert listed.json()["slos"][0]["breached"] is False


def test_slo_documents_are_validated_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "slo.yaml").write_text("kind: SLO\nname: bad\noutcome: ticket resolved\nobjective: -1 USD\n"
                                       "window: {calendar: day}\nscope: {colour: red}\n")
    with pytest.raises(BundleError) as error:
        load_bundle(tmp_path)
    text = str(error.value)
    for expected in ("slo.yaml:3: outcome", "slo.yaml:4: objective", "window", "scope"):
        assert expected in text
    (tmp_path / "slo.yaml").write_text(BUNDLE)
    bundle = load_bundle(tmp_path)
    assert bundle.slos[0].objective_nano == 500_000 and dict(bundle.slos[0].scope) == {"agent": "support-bot"}


THROTTLE = """
kind: SLO
name: research-cost
outcome: paper_summarised
objective: 0.000001 USD
window: {rolling: 1h}
scope: {agent: research-bot}
---
kind: Policy
name: research-slow-down
on: slo.breach
effect: throttle
set: {max_calls_per_minute: 2}
reason: research is over its unit cost
"""


def test_slo_breach_throttles_the_scope(make_server: Callable[..., Server]) -> None:
    server = make_server(THROTTLE)
    monitor = SloMonitor(server.app.store, lambda: server.app.bundle.engine, Notes())
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.key(), max_retries=0)
    _ask(client, "research-bot")
    (state,) = monitor.evaluate()
    assert state.breached and state.actions[0]["effect"] == "throttle"
    server.app.core.slo_gate.refresh()
    _ask(client, "research-bot")  # 1 call in the last minute so far: under the limit of 2
    with pytest.raises(openai.RateLimitError, match=r"throttled by policy 'research-slow-down' while SLO "
                                                     r"'research-cost' is breached: 2 calls in the last minute"):
        _ask(client, "research-bot")
    assert _ask(client, "other-bot") == ("gpt-4o", None)
