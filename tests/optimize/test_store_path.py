"""The detectors read from the store (grouped SQL, compact rows) exactly what they read from memory,
on SQLite and PostgreSQL; per-outcome inference amplification."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from costplane.attribution.context import Context
from costplane.ledger import CostEvent, DecisionRecord, open_store
from costplane.ledger.migrations import LATEST
from costplane.optimize.detectors import DETECTORS, run_detectors
from costplane.optimize.detectors.memory_source import MemorySource
from costplane.optimize.detectors.source import source_of
from costplane.optimize.detectors.store_source import StoreSource
from costplane.optimize.findings import DetectorInput
from costplane.optimize.history import History, load_history
from costplane.optimize.synthetic import SyntheticHistory, SyntheticSpec, generate, synthetic_config, write
from costplane.policy.bundle import load_bundle
from costplane.pricing.catalog import Catalog
from costplane.pricing.types import TokenUsage

CATALOG = Catalog.load()
INPUTS = DetectorInput(synthetic_config(), CATALOG)
# ~12k requests: every request detector finds its pattern, small enough to write one decision at a time
SMALL = SyntheticSpec.all_patterns(
    embeddings=True, outcome_amplification=True, outcome_runs=900, control_calls=150, oversized_calls=400,
    inflation_calls=300, amplification_runs=100, chatter_runs=80, leaked_calls=200)


def _legacy(synthetic: SyntheticHistory) -> SyntheticHistory:
    """Add 12 identical deterministic requests recorded before `cache_hash` existed (the fallback rule)."""
    decisions, events = [], []
    ctx = Context(org="acme", team="legacy", agent="legacy-bot")
    for i in range(12):
        ts = synthetic.start + timedelta(days=3, seconds=60 * i)
        decisions.append(DecisionRecord(
            id=f"dec_legacy_{i:02d}", ts=ts, hook="llm.request", effect="allow", bundle_revision="old", context=ctx,
            input={"endpoint": "chat.completions", "model": "gpt-4o", "stream": False,
                   "params": {"temperature": 0}, "request_hash": "same"},
            result={"model": "gpt-4o"}, key_id=None, status_code=200))
        events.append(CostEvent(id=f"evt_legacy_{i:02d}", ts=ts + timedelta(seconds=1), context=ctx,
                                provider="openai", model="gpt-4o", cost_nano=500_000_000,
                                usage=TokenUsage(1000, 100), decision_id=f"dec_legacy_{i:02d}",
                                request_hash="same"))
    return dataclasses.replace(synthetic, decisions=synthetic.decisions + tuple(decisions),
                               events=synthetic.events + tuple(events))


@pytest.fixture(scope="module")
def small() -> SyntheticHistory:
    return _legacy(generate(SMALL, CATALOG))


def test_store_path_finds_exactly_what_memory_finds(store_url: Callable[[], str], small: SyntheticHistory) -> None:
    memory = History.build(small.start, small.end, small.decisions, small.events, small.outcomes)
    expected = run_detectors(memory, INPUTS)
    assert isinstance(source_of(memory), MemorySource)
    store = open_store(store_url())
    try:
        store.migrate()
        assert store.schema_version() == LATEST >= 10
        write(store, small)
        history = load_history(store, small.start, small.end)
        found = run_detectors(history, INPUTS)
        assert isinstance(source_of(history), StoreSource) and not history.loaded
        assert found == expected  # findings, evidence, scope, savings and documents, in the same order
        assert len(history.requests) == len(small.decisions)  # replay still loads the window as objects
    finally:
        store.close()
    assert {f.detector for f in expected} == set(DETECTORS)
    assert {f.scope.get("agent") for f in expected if f.detector == "cache_opportunity"} >= {"faq-bot", "legacy-bot"}
    assert any(f.scope.get("outcome") == "application_decided" for f in expected)


def test_per_outcome_amplification_finds_its_pattern(tmp_path: Path) -> None:
    planted = generate(SyntheticSpec(outcome_amplification=True), CATALOG)
    history = History.build(planted.start, planted.end, planted.decisions, planted.events, planted.outcomes)
    found = [f for f in run_detectors(history, INPUTS, ["inference_amplification"])]
    assert [f.scope["agent"] for f in found] == ["underwriter"]  # the steady `quoter` is not reported
    finding = found[0]
    known = planted.known["inference_amplification_per_outcome"]
    assert abs(finding.monthly_saving_nano - known) <= known // 10
    assert finding.scope == {"agent": "underwriter", "outcome": "application_decided", "team": "risk"}
    assert finding.evidence["per"] == "outcome" and float(finding.evidence["calls_per_outcome_start"]) < 4.5
    (tmp_path / "doc.yaml").write_text(finding.document)
    budget = load_bundle(tmp_path).budgets[0]
    assert budget.max_calls is not None and budget.max_calls > 0


@pytest.mark.parametrize("seed", [8, 11])
def test_steady_calls_per_outcome_raise_nothing(seed: int) -> None:
    planted = generate(SyntheticSpec(seed=seed, oversizing=False, cache=False, outcome_amplification=True), CATALOG)
    history = History.build(planted.start, planted.end, planted.decisions, planted.events, planted.outcomes)
    assert {f.scope["agent"] for f in run_detectors(history, INPUTS)} == {"underwriter"}
