"""Acceptance: the scripted support agent resolves tickets through the SDK against the simulator;
the report's cost per resolved ticket matches a hand computation (unresolved runs included)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from types import ModuleType

import httpx
import openai

import costplane
from costplane.runs.report import cost_per_outcome
from run_harness import Server

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agents" / "support_agent.py"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("support_agent", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["support_agent"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _hand_cost(usages: list[object], rates: tuple[Decimal, Decimal]) -> Decimal:
    """USD, by hand: prompt tokens × input rate + completion tokens × output rate, per million."""
    total = Decimal(0)
    for usage in usages:
        cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0  # type: ignore[attr-defined]
        assert not cached  # short prompts: the simulator caches nothing
        total += (usage.prompt_tokens * rates[0] + usage.completion_tokens * rates[1]) / Decimal(10**6)  # type: ignore[attr-defined]
    return total


def test_support_agent_cost_per_resolved_ticket(make_server: Callable[..., Server]) -> None:
    agent = _example()
    server = make_server()
    session = server.session()
    client = costplane.instrument(openai.OpenAI(base_url=f"{server.simulator_url}/v1", api_key="sk", max_retries=0),
                                  mode="direct", session=session)
    with session.activate(), costplane.context(team="support"):
        results = agent.run_support_agent(client)
    session.close()
    resolved = [r for r in results if r.resolved]
    assert len(results) == 5 and len(resolved) == 4

    price = server.app.catalog.resolve("gpt-4o-mini", "openai")
    total = _hand_cost([u for r in results for u in r.usages], (price.input, price.output))
    wasted = _hand_cost([u for r in results if not r.resolved for u in r.usages], (price.input, price.output))
    expected = (total / 4).quantize(Decimal("1e-9"), rounding=ROUND_HALF_UP)

    (row,) = cost_per_outcome(server.app.store, "ticket_resolved")
    assert dict(row.group) == {"agent": "support-bot", "model": "gpt-4o-mini", "tier": "production"}
    assert row.outcomes == 4 and row.runs == 5 and row.runs_without_outcome == 1
    assert row.cost_per_outcome == expected
    assert abs(Decimal(row.cost_nano) / 10**9 - total) <= Decimal("6e-9")  # each event rounds once to a nano-USD
    assert abs(Decimal(row.waste_nano) / 10**9 - wasted) <= Decimal("2e-9")

    # the same report through the API
    key = server.key()
    body = httpx.get(f"{server.url}/v1/outcomes/report", params={"outcome": "ticket_resolved", "bucket": "day"},
                     headers={"authorization": f"Bearer {key}"}, timeout=10).json()
    (api_row,) = body["rows"]
    assert Decimal(api_row["cost_per_outcome_usd"]) == expected and api_row["runs_without_outcome"] == 1


def test_outcomes_api_records_with_the_keys_attributes(make_server: Callable[..., Server]) -> None:
    server = make_server()
    key = server.key(team="support")
    headers = {"authorization": f"Bearer {key}"}
    reply = httpx.post(f"{server.url}/v1/outcomes", headers=headers, timeout=10,
                       json={"outcome": "ticket_resolved", "value": 2, "run": "ticket-9",
                             "context": {"agent": "support-bot", "team": "other"}})
    assert reply.status_code == 201, reply.text
    (record,) = server.app.store.list_outcomes(outcome="ticket_resolved")
    assert record.value == 2 and record.context.run == "ticket-9" and record.context.team == "support"
    bad = httpx.post(f"{server.url}/v1/outcomes", headers=headers, json={"outcome": "x", "value": "lots"}, timeout=10)
    assert bad.status_code == 400 and "outcomes[0].value" in bad.text
    assert httpx.post(f"{server.url}/v1/outcomes", json={"outcome": "x"}, timeout=10).status_code == 401
