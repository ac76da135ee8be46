"""Detectors, policy replay and the capability assessment over the seeded synthetic history."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costplane.cli.main import app
from costplane.ledger import Store, open_store
from costplane.optimize.assess import assess, observe
from costplane.optimize.detectors import run_detectors
from costplane.optimize.findings import DetectorInput
from costplane.optimize.history import History, load_history
from costplane.optimize.replay import replay
from costplane.optimize.synthetic import SyntheticHistory, SyntheticSpec, generate, synthetic_config, write
from costplane.policy.bundle import load_bundle
from costplane.pricing.catalog import Catalog

CATALOG = Catalog.load()
CONFIG = synthetic_config()
INPUTS = DetectorInput(CONFIG, CATALOG)
runner = CliRunner()


def as_history(synthetic: SyntheticHistory) -> History:
    return History.build(synthetic.start, synthetic.end, synthetic.decisions, synthetic.events)


@pytest.fixture(scope="module")
def planted() -> SyntheticHistory:
    return generate(SyntheticSpec(), CATALOG)


def test_generator_is_deterministic(planted: SyntheticHistory) -> None:
    again = generate(SyntheticSpec(), CATALOG)
    assert again.known == planted.known and again.events == planted.events
    assert generate(SyntheticSpec(seed=8), CATALOG).known != planted.known


def test_each_detector_finds_its_pattern_within_10_percent(planted: SyntheticHistory) -> None:
    findings = {f.detector: f for f in run_detectors(as_history(planted), INPUTS)}
    assert set(findings) == {"model_oversizing", "cache_opportunity"}
    for name, known in planted.known.items():
        assert abs(findings[name].monthly_saving_nano - known) <= known // 10, name
    assert findings["model_oversizing"].scope["agent"] == "triage-bot"
    assert findings["cache_opportunity"].scope == {"agent": "faq-bot"}
    savings = [f.monthly_saving_nano for f in run_detectors(as_history(planted), INPUTS)]
    assert savings == sorted(savings, reverse=True)


def test_control_history_raises_nothing() -> None:
    control = generate(SyntheticSpec(oversizing=False, cache=False), CATALOG)
    assert run_detectors(as_history(control), INPUTS) == []


def test_emitted_documents_validate(planted: SyntheticHistory, tmp_path: Path) -> None:
    for i, finding in enumerate(run_detectors(as_history(planted), INPUTS)):
        (tmp_path / f"{i}.yaml").write_text(finding.document)
    bundle = load_bundle(tmp_path)
    assert {p.effect for p in bundle.policies} == {"route", "mutate"}


def _candidate(planted: SyntheticHistory, tmp_path: Path) -> Path:
    for finding in run_detectors(as_history(planted), INPUTS):
        (tmp_path / f"{finding.detector}.yaml").write_text(finding.document)
    return tmp_path


def test_replay_of_emitted_policies_removes_the_patterns_cost(store_url: Callable[[], str], tmp_path: Path,
                                                              planted: SyntheticHistory) -> None:
    store = open_store(store_url())
    try:
        store.migrate()
        write(store, planted)
        before = (store.count_events(), len(store.list_decisions(limit=10**6)), dict(store.stats()))
        history = load_history(store, planted.start, planted.end)
        assert len(history.requests) == len(planted.decisions)
        report = replay(history, load_bundle(_candidate(planted, tmp_path)), CONFIG, CATALOG)
        after = (store.count_events(), len(store.list_decisions(limit=10**6)), dict(store.stats()))
    finally:
        store.close()
    assert before == after  # nothing is changed by a replay
    rerouted, cached = report.by_kind["rerouted"], report.by_kind["cached"]
    assert rerouted.saved_nano == planted.known["model_oversizing"]
    assert cached.saved_nano == planted.known["cache_opportunity"]
    assert report.saved_nano == sum(planted.known.values())
    assert set(report.by_agent) == {"triage-bot", "faq-bot"}
    assert report.reroutes["gpt-4o -> gpt-4o-mini"].requests == 1000
    assert report.to_json()["saved_nano"] == report.saved_nano


def test_replay_simulates_candidate_budgets_and_denies(planted: SyntheticHistory, tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(
        "kind: Budget\nname: faq-daily\nscope: ctx.agent == \"faq-bot\"\namount: 0.05 USD\n"
        "window: {calendar: day, timezone: UTC}\n---\n"
        "kind: Policy\nname: no-research\non: llm.request\nwhen: ctx.agent == \"research-agent\"\n"
        "effect: deny\nreason: paused\n")
    report = replay(as_history(planted), load_bundle(tmp_path), CONFIG, CATALOG)
    research = [r for r in planted.decisions if r.context.agent == "research-agent"]
    assert report.by_cause["no-research"].requests == len(research)
    assert report.by_cause["no-research"].kinds == {"denied": len(research)}
    refused = report.by_cause["faq-daily"]
    assert refused.kinds == {"budget_refused": refused.requests} and refused.requests > 0
    assert report.recorded_nano == sum(e.cost_nano for e in planted.events)
    assert report.recorded_nano - report.replayed_nano == report.saved_nano == sum(
        c.saved_nano for c in report.changes)


def test_unchanged_bundle_replays_to_the_recorded_cost(planted: SyntheticHistory, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("kind: Policy\nname: audit\non: llm.request\neffect: allow\n")
    report = replay(as_history(planted), load_bundle(tmp_path), CONFIG, CATALOG)
    assert report.changes == [] and report.saved_nano == 0 and report.requests == len(planted.decisions)


def _ledger(tmp_path: Path, planted: SyntheticHistory) -> Path:
    """A costplane.yaml over a SQLite ledger holding the planted history (timestamps moved to now)."""
    from datetime import UTC, datetime, timedelta

    spec = SyntheticSpec(start=datetime.now(UTC).replace(microsecond=0) - timedelta(days=30, hours=1))
    recent = generate(spec, CATALOG)
    store: Store = open_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    store.migrate()
    write(store, recent)
    store.close()
    config = tmp_path / "costplane.yaml"
    config.write_text(
        "store: sqlite:///ledger.db\nbundle: bundle\nproviders:\n"
        "  openai: {type: openai, base_url: 'http://127.0.0.1:9/v1', models: ['gpt-*'], pricing_provider: openai}\n"
        "  anthropic: {type: anthropic, base_url: 'http://127.0.0.1:9/v1', models: ['claude-*'],"
        " pricing_provider: anthropic}\n")
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "b.yaml").write_text(
        "kind: Budget\nname: all\namount: 1000 USD\nalerts: [80]\n---\n"
        "kind: Policy\nname: audit\non: llm.request\neffect: allow\n---\n"
        "kind: PolicyTest\nname: t\nrequest: {model: gpt-4o}\nexpect: {policies: [audit]}\n")
    return config


def test_cli_recommend_replay_and_assess(tmp_path: Path, planted: SyntheticHistory, monkeypatch:
                                         pytest.MonkeyPatch) -> None:
    config = _ledger(tmp_path, planted)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["recommend", "--since", "31d", "--config", str(config), "--format", "json"])
    assert result.exit_code == 0, result.output
    findings = json.loads(result.stdout)["findings"]
    assert [f["detector"] for f in findings] == ["model_oversizing", "cache_opportunity"]
    candidate = tmp_path / "candidate"
    candidate.mkdir()
    for i, finding in enumerate(findings):
        (candidate / f"{i}.yaml").write_text(finding["document"])
    result = runner.invoke(app, ["policy", "replay", str(candidate), "--since", "31d", "--config", str(config),
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload["by_kind"]) == {"rerouted", "cached"} and payload["saved_nano"] > 0
    text = runner.invoke(app, ["policy", "replay", str(candidate), "--config", str(config)])
    assert text.exit_code == 0 and "saved" in text.output and "triage-bot" in text.output
    result = runner.invoke(app, ["assess", "--config", str(config), "--format", "json"])
    assert result.exit_code == 0, result.output
    scores = {s["capability"]: s for s in json.loads(result.stdout)["scores"]}
    assert len(scores) == 7 and all(1 <= s["score"] <= 5 for s in scores.values())
    assert scores["enforcement"]["observed"] >= 4  # every synthetic event passed a decision; a hard budget
    assert scores["optimization"]["observed"] == 1  # no route/mutate policy in the bundle
    worksheet = runner.invoke(app, ["assess", "--config", str(config), "--interactive"], input="y\n" * 6)
    assert worksheet.exit_code == 0, worksheet.output
    assert "# costplane capability assessment" in worksheet.stdout


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["recommend", "--config", str(tmp_path / "nope.yaml")])
    assert missing.exit_code != 0 and "Traceback" not in missing.output
    (tmp_path / "c.yaml").write_text(f"store: sqlite:///{tmp_path / 'absent.db'}\n")
    result = runner.invoke(app, ["recommend", "--config", str(tmp_path / "c.yaml"), "--since", "3x"])
    assert result.exit_code != 0 and "Traceback" not in result.output


def test_assess_scores_an_empty_ledger_at_one(store: Store) -> None:
    result = assess(observe(store, None, __import__("datetime").datetime(2020, 1, 1, tzinfo=__import__(
        "datetime").UTC)))
    assert {s.score for s in result.scores} == {1}
    assert all(s.gaps for s in result.scores)
