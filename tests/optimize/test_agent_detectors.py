"""The four agent-pattern detectors: known savings, a clean control, valid documents, replay."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from costplane.optimize.detectors import run_detectors
from costplane.optimize.findings import DetectorInput, Finding
from costplane.optimize.history import History
from costplane.optimize.replay import replay
from costplane.optimize.synthetic import SyntheticHistory, SyntheticSpec, generate, synthetic_config
from costplane.policy.bundle import load_bundle
from costplane.pricing.catalog import Catalog

CATALOG = Catalog.load()
CONFIG = synthetic_config()
INPUTS = DetectorInput(CONFIG, CATALOG)
NEW = ("prompt_inflation", "inference_amplification", "agent_chatter", "tier_leakage")


def as_history(synthetic: SyntheticHistory) -> History:
    return History.build(synthetic.start, synthetic.end, synthetic.decisions, synthetic.events)


@pytest.fixture(scope="module")
def planted() -> SyntheticHistory:
    return generate(SyntheticSpec.all_patterns(), CATALOG)


@pytest.fixture(scope="module")
def findings(planted: SyntheticHistory) -> dict[str, Finding]:
    return {f.detector: f for f in run_detectors(as_history(planted), INPUTS)}


def test_new_patterns_leave_the_existing_figures_unchanged(planted: SyntheticHistory) -> None:
    base = generate(SyntheticSpec(), CATALOG)
    assert {k: planted.known[k] for k in base.known} == base.known
    assert set(planted.known) == set(base.known) | set(NEW)
    assert generate(SyntheticSpec.all_patterns(), CATALOG).known == planted.known


def test_each_new_detector_finds_its_pattern_within_10_percent(planted: SyntheticHistory,
                                                               findings: dict[str, Finding]) -> None:
    assert set(findings) == set(planted.known)
    for name in NEW:
        known = planted.known[name]
        assert known > 1_000_000_000
        assert abs(findings[name].monthly_saving_nano - known) <= known // 10, name
    assert findings["prompt_inflation"].scope["agent"] == "kb-assistant"
    assert findings["inference_amplification"].scope["agent"] == "claims-agent"
    assert findings["inference_amplification"].evidence["calls_per_run_start"] == 3
    assert findings["agent_chatter"].scope["agent"] == "crawler"
    assert findings["tier_leakage"].scope == {"tier": "experiment", "provider": "anthropic",
                                              "model": "claude-3-5-sonnet-latest"}


@pytest.mark.parametrize("seed", [7, 8, 11])
def test_clean_control_raises_nothing(seed: int) -> None:
    control = generate(SyntheticSpec(seed=seed, oversizing=False, cache=False), CATALOG)
    assert run_detectors(as_history(control), INPUTS) == []
    existing = generate(SyntheticSpec(seed=seed), CATALOG)  # the older patterns are not mistaken for new ones
    assert {f.detector for f in run_detectors(as_history(existing), INPUTS)} == {"model_oversizing",
                                                                                "cache_opportunity"}


def test_documents_validate_and_replay_removes_each_pattern(planted: SyntheticHistory, findings: dict[str, Finding],
                                                             tmp_path: Path) -> None:
    history = as_history(planted)
    # the planted chatter loops were never under a loop guard: replay them under the configuration they
    # were recorded with (a gateway whose guard would have refused them would not have logged them)
    unguarded = replace(CONFIG, gateway=replace(CONFIG.gateway, loop_threshold=1_000_000))
    for name in NEW:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "doc.yaml").write_text(findings[name].document)
        bundle = load_bundle(folder)
        report = replay(history, bundle, unguarded, CATALOG)
        known = planted.known[name]
        agents = {c.agent for c in report.changes}
        if name == "prompt_inflation":  # the context cap denies the inflated requests: removes the extra tokens
            assert bundle.policies[0].effect == "deny"
            assert agents == {"kb-assistant"} and set(report.by_kind) == {"denied"}
            assert report.saved_nano >= known
        elif name == "inference_amplification":  # per-run max_calls at the baseline: exactly the excess calls
            assert bundle.budgets[0].max_calls == 3 and bundle.budgets[0].per == ("run",)
            assert set(report.by_kind) == {"budget_refused"} and report.saved_nano == known
        elif name == "agent_chatter":  # per-run cap at the most distinct steps: caps the loops
            assert agents == {"crawler"} and set(report.by_kind) == {"budget_refused"}
            assert known // 2 <= report.saved_nano <= known
        else:  # experiment tier re-routed to the small model: exactly the planted saving
            assert set(report.reroutes) == {"claude-3-5-sonnet-latest -> claude-3-5-haiku-latest"}
            assert report.saved_nano == known and {c.team for c in report.changes} == {"ml"}
