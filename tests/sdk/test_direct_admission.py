"""A store session admits a direct-mode call through the decision core before it is made: the bundle's
policies and budgets, the configuration's default max_tokens and the configured pricing provider."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from costplane.app import Application
from costplane.attribution.context import Context
from costplane.config import parse_config
from costplane.core.requests import LlmRequest
from costplane.pricing.types import TokenUsage
from costplane.sdk.guards import GuardError, SpendRefused
from costplane.sdk.session import Session
from run_harness import Server

BUNDLE = """
kind: Policy
name: no-o3
on: llm.request
when: request.model == "o3"
effect: deny
reason: o3 is not for this team
---
kind: Policy
name: small-for-experiments
on: llm.request
when: ctx.tier == "experiment"
effect: route
set: {model: gpt-4o-mini}
---
kind: Budget
name: bot
scope: ctx.agent == "bot"
amount: 1 USD
enforcement: hard
"""


def _app(tmp_path: Path, **extra: object) -> Application:
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "b.yaml").write_text(BUNDLE)
    return Application(parse_config({"store": f"sqlite:///{tmp_path}/l.db", "bundle": str(tmp_path / "bundle"),
                                     **extra}))


def _ask(model: str, max_tokens: int | None = None) -> LlmRequest:
    return LlmRequest("openai", "chat.completions", model, 200, 150, max_tokens)


def test_a_direct_call_is_admitted_settled_and_refused_by_the_bundle(tmp_path: Path) -> None:
    app = _app(tmp_path, gateway={"default_max_tokens": 300})
    with Session(application=app) as session:
        assert session.admits
        admitted = session.admit_llm(Context(agent="bot", run="r-1"), _ask("gpt-4o"))
        assert admitted.max_tokens == 300  # the configuration's default, not the SDK's own
        assert admitted.provider.pricing_provider == "openai" and admitted.reservation is not None
        assert [s.budget for s in admitted.states] == ["bot"]
        settled = session.settle_llm(admitted, TokenUsage(input_tokens=150, output_tokens=20))
        event = app.store.get_event(settled.event_id)
        assert event is not None and event.decision_id == admitted.decision_id and event.cost_nano > 0
        assert app.store.open_reservations() == 0

        routed = session.admit_llm(Context(agent="bot", tier="experiment"), _ask("gpt-4o", 50))
        assert (routed.effect, routed.model, routed.max_tokens) == ("route", "gpt-4o-mini", 50)
        session.release_llm(routed)
        assert app.store.open_reservations() == 0

        with pytest.raises(SpendRefused) as refused:
            session.admit_llm(Context(agent="bot"), _ask("o3"))
        assert isinstance(refused.value, GuardError) and refused.value.code == "policy_denied"
        (decision,) = [d for d in app.store.list_decisions(limit=20) if d.id == refused.value.decision_id]
        assert decision.input["direct"] is True and decision.input["request"]["model"] == "o3"
        with pytest.raises(SpendRefused) as broke:  # 1 USD cannot hold 200 input + 100k output tokens of gpt-4o
            session.admit_llm(Context(agent="bot"), _ask("gpt-4o", 100_000))
        assert broke.value.code == "budget_exceeded" and "budget 'bot'" in str(broke.value)
    app.close()


def test_a_configured_provider_prices_the_call(tmp_path: Path) -> None:
    app = _app(tmp_path, providers={"azure-east": {"type": "openai", "base_url": "http://127.0.0.1:1/v1",
                                                   "models": ["gpt-*"], "pricing_provider": "azure"}})
    with Session(application=app) as session:
        admitted = session.admit_llm(Context(agent="other"), _ask("gpt-4o", 10))
        assert (admitted.provider.name, admitted.provider.pricing_provider) == ("azure-east", "azure")
        (decision,) = [d for d in app.store.list_decisions(limit=5) if d.id == admitted.decision_id]
        assert decision.input["request"]["provider"] == "azure"
        session.release_llm(admitted)
    app.close()


def test_an_api_session_is_admitted_by_the_server(make_server: Callable[..., Server]) -> None:
    server = make_server(BUNDLE)
    key = server.key()
    with Session(api_url=server.url, api_key=key) as session:
        assert session.admits
        admitted = session.admit_llm(Context(agent="bot", run="r-api"), _ask("gpt-4o"))
        assert admitted.max_tokens == server.app.config.gateway.default_max_tokens
        assert admitted.reservation is not None and server.app.store.open_reservations() == 1
        settled = session.settle_llm(admitted, TokenUsage(input_tokens=150, output_tokens=20), latency_ms=12)
        event = server.app.store.get_event(settled.event_id)
        assert event is not None and event.decision_id == admitted.decision_id and event.cost_nano == settled.cost_nano
        assert event.context.agent == "bot" and event.context.key_id is not None
        assert server.app.store.open_reservations() == 0
        (decision,) = [d for d in server.app.store.list_decisions(limit=20) if d.id == admitted.decision_id]
        assert decision.input["direct"] is True and decision.budgets == ("bot",)
        with pytest.raises(RuntimeError, match="not_open"):  # a call is settled once
            session.settle_llm(admitted, TokenUsage(input_tokens=150, output_tokens=20))

        routed = session.admit_llm(Context(agent="bot", tier="experiment"), _ask("gpt-4o", 50))
        assert (routed.effect, routed.model, routed.max_tokens) == ("route", "gpt-4o-mini", 50)
        with Session(api_url=server.url, api_key=server.key()) as other, pytest.raises(RuntimeError,
                                                                                      match="unknown_reservation"):
            other.release_llm(routed)  # another key's reservation is not found
        session.release_llm(routed)
        assert server.app.store.open_reservations() == 0

        with pytest.raises(SpendRefused) as refused:
            session.admit_llm(Context(agent="bot"), _ask("o3"))
        assert refused.value.code == "policy_denied" and refused.value.decision_id
        with pytest.raises(SpendRefused) as broke:
            session.admit_llm(Context(agent="bot"), _ask("gpt-4o", 100_000))
        assert broke.value.code == "budget_exceeded"
