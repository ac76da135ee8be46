"""`costplane demo --fast`: the whole product end to end, checked against what the ledger recorded."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costplane.cli.main import app
from costplane.ledger.open import open_store
from costplane.ledger.store import Store
from costplane.ledger.types import CostEvent, DecisionRecord
from costplane.money import parse_usd
from costplane.runs.tree import build_tree, list_runs

pytest.importorskip("openai")
pytest.importorskip("anthropic")
pytest.importorskip("agents")
pytest.importorskip("google.genai")
pytest.importorskip("boto3")

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class DemoRun:
    directory: Path
    output: str
    exit_code: int
    store: Store
    events: list[CostEvent]
    denials: list[DecisionRecord]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    directory = tmp_path_factory.mktemp("demo") / "run"
    result = CliRunner().invoke(app, ["demo", "--fast", "--dir", str(directory), "--seed", "3"])
    store = open_store(f"sqlite:///{directory / 'costplane.db'}")
    try:
        yield DemoRun(directory, result.output, result.exit_code, store, store.list_events(limit=1_000_000),
                      store.list_decisions(effect="deny", limit=1_000_000))
    finally:
        store.close()


def _codes(run: DemoRun) -> Counter[str]:
    return Counter(str(d.result.get("code")) for d in run.denials)


def test_the_demo_finishes_and_says_where_to_go_next(demo_run: DemoRun) -> None:
    assert demo_run.exit_code == 0, demo_run.output
    assert "Spend by team" in demo_run.output
    assert "Example denials" in demo_run.output
    assert "budget_threshold" in demo_run.output  # the core's alerts are collected, not logged
    output = demo_run.output.replace("\n", "")
    assert str(demo_run.directory / "costplane.db") in output
    assert f"costplane serve --config {demo_run.directory / 'costplane.yaml'}" in output
    assert (demo_run.directory / "costplane.yaml").is_file()


def test_every_team_spent_money(demo_run: DemoRun) -> None:
    spend = {row.group["team"]: row.cost_nano for row in demo_run.store.spend(group_by=["team"])}
    for team in ("ml", "support", "growth", "finance"):
        assert spend.get(team, 0) > 0, spend


def test_experiment_prompts_were_rerouted(demo_run: DemoRun) -> None:
    rerouted = [e for e in demo_run.events if e.requested_model == "gpt-4o" and e.model == "gpt-4o-mini"]
    assert rerouted
    assert all(e.context.tier == "experiment" for e in rerouted)
    assert sum(e.saved_nano for e in rerouted) > 0


def test_reasoning_models_were_denied_by_policy(demo_run: DemoRun) -> None:
    denied = [d for d in demo_run.denials if d.result.get("code") == "policy_denied"
              and "experiments-no-reasoning-models" in d.policies]
    assert denied and all(d.status_code == 403 for d in denied)
    assert "experiments-no-reasoning-models" in denied[0].reason


def test_the_loop_guard_and_the_run_limits_stopped_the_research_agent(demo_run: DemoRun) -> None:
    codes = _codes(demo_run)
    assert codes["loop_detected"] >= 1
    assert codes["call_limit_exceeded"] >= 1
    run_limits = [d for d in demo_run.denials if d.result.get("budget") == "agent-run-limits"]
    assert {d.result.get("limit") for d in run_limits} >= {"calls", "amount"}


def test_the_research_runs_show_how_they_ended(demo_run: DemoRun) -> None:
    """The gateway-driven runs the core stopped are listed as stopped, with the decision that stopped
    them, their agent and their start time (the list, the tree and the demo's summary)."""
    runs = {r.run: r for r in list_runs(demo_run.store, limit=500)}
    denials = {d.id: d for d in demo_run.denials}
    expected = {"r-deep-1": ("budget", "budget_exceeded"), "r-loop-1": ("loop_guard", "loop_detected"),
                "r-crawl-1": ("call_limit", "call_limit_exceeded")}
    for run_id, (kind, code) in expected.items():
        run = runs[run_id]
        assert run.status == "stopped" and run.stopped_by is not None, run
        assert (run.stopped_by["kind"], run.stopped_by["code"]) == (kind, code)
        decision = denials[run.stopped_by["decision_id"]]
        assert decision.context.run == run_id and decision.result.get("code") == code
        assert run.agent == "research-agent" and run.started_at is not None
        assert run.started_at <= decision.ts
        tree = build_tree(demo_run.store, run_id)
        assert tree is not None and tree.status == "stopped" and tree.stopped_by == run.stopped_by
        assert run_id in demo_run.output
    assert runs["r-crawl-1"].stopped_by is not None and runs["r-crawl-1"].stopped_by["name"] == "agent-run-limits"
    assert runs["r-crawl-1"].events == 40
    assert "Runs stopped" in demo_run.output
    finished = [r for r in runs.values() if r.run.startswith("t-")]
    assert finished and all(r.status == "ok" and r.agent == "support-bot" for r in finished)


def test_the_growth_budget_ran_out_and_was_never_exceeded(demo_run: DemoRun) -> None:
    growth = [d for d in demo_run.denials if d.result.get("budget") == "team-growth-daily"]
    assert growth and all(d.status_code == 402 for d in growth)
    assert "team-growth-daily" in growth[0].reason and "0.05 USD" in growth[0].reason
    spent = sum(e.cost_nano for e in demo_run.events if e.context.team == "growth")
    assert 0 < spent <= parse_usd("0.05 USD")


def test_repeated_embeddings_were_served_from_the_cache(demo_run: DemoRun) -> None:
    hits = [e for e in demo_run.events if e.kind == "cache_hit"]
    assert hits
    assert all(e.cost_nano == 0 and e.saved_nano > 0 for e in hits)


def test_nothing_is_left_reserved_and_the_books_balance(demo_run: DemoRun) -> None:
    assert demo_run.store.open_reservations() == 0
    total = sum(row.cost_nano for row in demo_run.store.spend())
    assert total == sum(e.cost_nano for e in demo_run.events) > 0
    assert len(demo_run.events) == demo_run.store.count_events()


def test_a_directory_that_is_not_empty_is_refused(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    result = CliRunner().invoke(app, ["demo", "--fast", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "not empty" in result.output


def test_missing_sdks_are_named_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import costplane.demo

    monkeypatch.setattr(costplane.demo, "missing_dependencies", lambda: ["anthropic"])
    result = CliRunner().invoke(app, ["demo", "--fast"])
    assert result.exit_code == 3
    assert "anthropic is not installed" in result.output
    assert "costplane[demo]" in result.output


def test_the_demo_ledger_is_browsable_with_the_printed_dashboard_logins(demo_run: DemoRun) -> None:
    import re

    import httpx

    from costplane.app import Application
    from costplane.config import load_config
    from costplane.server import create_server
    from costplane.serving import BackgroundServer

    output = demo_run.output.replace("\n", "")
    logins = dict(re.findall(r"(finance|ml-dev|support-dev) / ([A-Za-z0-9_-]{12})", output))
    assert set(logins) == {"finance", "ml-dev", "support-dev"}, output
    application = Application(load_config(demo_run.directory / "costplane.yaml"))
    with BackgroundServer(create_server(application)) as server:
        seen: dict[str, str] = {}
        for user in ("finance", "ml-dev"):
            with httpx.Client(base_url=server.url, timeout=10) as client:
                r = client.post("/ui/login", data={"username": user, "password": logins[user]},
                                headers={"origin": server.url})
                assert r.status_code == 303
                seen[user] = client.get("/ui/").text
                if user == "finance":
                    seen["by-provider"] = client.get("/ui/breakdown", params={"by": "provider"}).text
    application.close()
    for team in ("support", "ml", "growth"):
        assert f'data-team="{team}"' in seen["finance"]
    for provider in ("openai", "anthropic", "azure-openai", "gemini", "bedrock"):
        assert f'data-provider="{provider}"' in seen["by-provider"]
    assert 'data-team="ml"' in seen["ml-dev"]
    assert 'data-team="support"' not in seen["ml-dev"] and 'data-team="growth"' not in seen["ml-dev"]


def _served(run: DemoRun, provider: str, endpoint: str) -> list[CostEvent]:
    return [e for e in run.events if e.provider == provider and e.endpoint == endpoint and e.kind == "llm"]


def test_the_openai_agents_agent_is_metered_step_by_step_and_the_loop_guard_stops_a_retry_storm(
        demo_run: DemoRun) -> None:
    """The concierge (openai-agents, default model, Responses API, a function tool): each model step is
    a cost event of the agent's run; a widget resubmitting one conversation is refused with a 429."""
    steps = _served(demo_run, "openai", "responses")
    assert len(steps) >= 4
    assert all(e.cost_nano > 0 and e.context.agent == "concierge" and e.context.team == "support" for e in steps)
    runs = Counter(e.context.run for e in steps)
    assert all(count >= 2 for count in runs.values()), runs  # the tool call, then the answer, in each run
    assert all(run.startswith("c-") for run in runs)
    refused = [d for d in demo_run.denials if d.context.run == "c-retry-1"]
    assert len(refused) == 1
    assert (refused[0].status_code, refused[0].result.get("code")) == (429, "loop_detected")
    assert refused[0].input["endpoint"] == "responses" and refused[0].context.agent == "concierge"
    assert 2 <= runs["c-retry-1"] <= 10  # stopped on a repeat, not after every retry


def test_the_gemini_pipeline_embeds_and_generates_and_short_prompts_go_to_flash(demo_run: DemoRun) -> None:
    embedded = _served(demo_run, "gemini", "embeddings")
    generated = _served(demo_run, "gemini", "generate_content")
    assert embedded and generated
    for event in embedded + generated:
        assert event.cost_nano > 0 and event.context.pipeline == "doc-enrich" and event.context.team == "ml"
        assert event.context.run.startswith("doc-")  # from the W3C baggage on the generate step
    routed = [e for e in generated if e.requested_model == "gemini-2.5-pro" and e.model == "gemini-2.5-flash"]
    assert routed and all(e.saved_nano > 0 for e in routed)
    assert any(e.model == "gemini-2.5-pro" for e in generated)  # the long contract keeps the large model


def test_the_bedrock_pipeline_is_metered_and_opus_is_refused_by_policy(demo_run: DemoRun) -> None:
    served = _served(demo_run, "bedrock", "converse")
    assert served and all(e.cost_nano > 0 and e.context.pipeline == "claims-triage" for e in served)
    assert {e.context.team for e in served} == {"finance"}
    assert {e.model for e in served} >= {"amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0"}
    refused = [d for d in demo_run.denials if "pipelines-no-opus" in d.policies]
    assert refused and all(d.status_code == 403 and d.result.get("code") == "policy_denied" for d in refused)
    assert all(d.input["protocol"] == "bedrock" and "opus" in d.input["model"] for d in refused)


def test_the_azure_copilot_is_priced_by_its_deployments_and_short_invoices_are_rerouted(demo_run: DemoRun) -> None:
    served = _served(demo_run, "azure-openai", "chat.completions")
    assert served and all(e.cost_nano > 0 and e.context.agent == "invoice-copilot" for e in served)
    assert all(e.requested_model == "invoices-4o" and e.context.run.startswith("inv-") for e in served)
    routed = [e for e in served if e.model == "gpt-4o-mini"]  # copilot-short-invoices-on-mini: invoices-mini
    assert routed and all(e.saved_nano > 0 for e in routed)
    assert any(e.model == "gpt-4o" for e in served)  # long invoices keep the gpt-4o deployment


def test_the_summary_shows_spend_per_provider(demo_run: DemoRun) -> None:
    spend = {row.group["provider"]: row.cost_nano for row in demo_run.store.spend(group_by=["provider"])}
    for provider in ("openai", "anthropic", "azure-openai", "gemini", "bedrock"):
        assert spend.get(provider, 0) > 0, spend
        assert provider in demo_run.output
    assert "Spend by provider" in demo_run.output


def test_ticket_classification_is_answered_by_gemini_for_the_openai_client(demo_run: DemoRun) -> None:
    """support-triage-on-gemini routes the support bot's OpenAI Chat call to another vendor's model:
    the gateway translates both ways, the event records both models at Gemini's price."""
    classified = [e for e in demo_run.events if e.context.step == "classify"]
    assert classified
    for event in classified:
        assert (event.provider, event.endpoint) == ("gemini", "chat.completions")
        assert (event.requested_model, event.model) == ("gpt-4o-mini", "gemini-2.5-flash-lite")
        assert event.cost_nano > 0 and event.context.agent == "support-bot" and event.status == "ok"
    assert sum(e.saved_nano for e in classified) > 0
