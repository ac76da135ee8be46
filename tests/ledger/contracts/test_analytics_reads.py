"""Conformance of `AnalyticsReads`: every figure of the detectors' and the assessment's reads, as
typed rows, pinned on a small ledger (two runs of one agent, a repeated request, an embedding, a
cacheable and a pre-cache-hash decision, an outcome). The detectors' results over a whole synthetic
history are compared with the in-memory definitions in tests/optimize/test_store_path.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from costplane.attribution.context import Context
from costplane.ledger import CostEvent, DecisionRecord, Store, codec
from costplane.ledger.optimizerows import (
    AgentRunsRow,
    AssessDecisionRow,
    AssessSpendRow,
    CacheableRow,
    LoopSummaryRow,
    ModelCostRow,
    ModelGroupRow,
    ModelOutcomeRunsRow,
)
from costplane.ledger.runtypes import OutcomeRecord
from costplane.pricing.types import TokenUsage

T0 = datetime(2025, 3, 1, tzinfo=UTC)
SINCE, UNTIL = codec.to_us(T0), codec.to_us(T0 + timedelta(days=7))
GPT = ("bot", "openai", "gpt-4o", None, "t")


def _decision(did: str, hours: int, input_: dict[str, Any], result: dict[str, Any]) -> DecisionRecord:
    return DecisionRecord(id=did, ts=T0 + timedelta(hours=hours), hook="llm.request", effect="allow",
                          bundle_revision="r", context=Context(agent="bot", team="t"), input=input_, result=result)


def _event(eid: str, hours: int, cost: int, tokens: tuple[int, int], *, run: str | None, request_hash: str,
           decision_id: str | None, model: str = "gpt-4o", endpoint: str = "chat.completions") -> CostEvent:
    return CostEvent(id=eid, ts=T0 + timedelta(hours=hours), context=Context(agent="bot", team="t", run=run),
                     provider="openai", model=model, cost_nano=cost, endpoint=endpoint,
                     usage=TokenUsage(*tokens), decision_id=decision_id, request_hash=request_hash)


@pytest.fixture
def seeded(store: Store) -> Store:
    store.record_decision(_decision("d1", 1, {"cache_hash": "c1"}, {"params": {}}))
    store.record_decision(_decision("d2", 2, {"endpoint": "embeddings"}, {"params": {}}))  # before cache_hash
    store.record_decision(_decision("d3", 25, {"cache_hash": "c3"}, {"params": {"cache": True}}))
    for ev in (_event("e1", 1, 1000, (100, 10), run="r1", request_hash="h1", decision_id="d1"),
               _event("e2", 2, 2000, (200, 20), run="r1", request_hash="h1", decision_id="d2"),
               _event("e3", 25, 3000, (3000, 30), run="r2", request_hash="h2", decision_id="d3"),
               _event("e4", 3, 5, (8, 0), run=None, request_hash="x1", decision_id=None,
                      model="text-embedding-3-small", endpoint="embeddings")):
        assert store.record_event(ev)
    store.record_outcome(OutcomeRecord(id="o1", ts=T0 + timedelta(hours=3), outcome="ticket_resolved",
                                       value=Decimal("1.5"), context=Context(agent="bot", run="r1")))
    return store


def test_model_groups_rows_and_costs(seeded: Store) -> None:
    groups = {g[:5]: g for g in seeded.optimize_model_groups(SINCE, UNTIL, 1000, 500)}
    assert set(groups) == {GPT, ("bot", "openai", "text-embedding-3-small", None, "t")}
    gpt = groups[GPT]
    assert isinstance(gpt, ModelGroupRow) and (gpt.calls, gpt.short_calls) == (3, 2)
    assert gpt.sum_y == pytest.approx(3300.0) and 0 < gpt.sum_x < 3
    rows = seeded.optimize_model_rows(SINCE, UNTIL, *GPT)
    assert [(r.id, r.input_tokens, r.output_tokens, r.cost_nano) for r in rows] == [
        ("e1", 100, 10, 1000), ("e2", 200, 20, 2000), ("e3", 3000, 30, 3000)]
    assert [r.id for r in seeded.optimize_model_rows(SINCE, UNTIL, *GPT, max_input=1000, max_output=500)] == [
        "e1", "e2"]
    femto = (1_000_000, 0, 0, 2_000_000, 0)  # 1 nano per input token, 2 per output token
    assert seeded.optimize_model_costs(SINCE, UNTIL, *GPT, femto) == [ModelCostRow(None, 3, 6000, 3420, 3000, 30)]


def test_agent_run_figures(seeded: Store) -> None:
    assert seeded.optimize_agents(SINCE, UNTIL) == ["bot"]
    runs = seeded.optimize_agent_runs(SINCE, UNTIL, "bot")
    assert isinstance(runs, AgentRunsRow)
    assert (runs.runs, runs.calls, runs.max_distinct, runs.duplicates, runs.repeating_runs) == (2, 3, 1, 1, 1)
    assert runs.sum_y == 3.0 and runs.sum_yy == 5.0
    assert seeded.optimize_loop_summary(SINCE, UNTIL, "bot") == LoopSummaryRow(1, 2000, 1, 1)
    assert sorted(seeded.optimize_run_steps(SINCE, UNTIL, "bot")) == [(1, 1), (2, 1)]
    sizes = sorted(seeded.optimize_run_sizes(SINCE, UNTIL, "bot"))
    assert [(s.run, s.first_ts, s.calls) for s in sizes] == [
        ("r1", codec.to_us(T0 + timedelta(hours=1)), 2), ("r2", codec.to_us(T0 + timedelta(hours=25)), 1)]
    assert seeded.optimize_run_excess(SINCE, UNTIL, "bot", 1) == 2000
    assert sorted(seeded.optimize_agent_days(SINCE, UNTIL, "bot")) == [(0, 2, 3000), (1, 1, 3000)]
    assert seeded.optimize_model_outcome_runs(SINCE, UNTIL, "bot", "openai", "gpt-4o") == ModelOutcomeRunsRow(2, 1)
    (outcome,) = seeded.optimize_outcomes(SINCE, UNTIL)
    assert (outcome.agent, outcome.outcome, Decimal(outcome.value)) == ("bot", "ticket_resolved", Decimal("1.5"))


def test_cache_and_embedding_reads(seeded: Store) -> None:
    assert seeded.optimize_cacheable(SINCE, UNTIL) == [
        CacheableRow(codec.to_us(T0 + timedelta(hours=1)), "d1", "agent", "bot", "c1", 1000)]
    (legacy,) = seeded.optimize_cache_legacy(SINCE, UNTIL)
    assert (legacy.id, legacy.agent, dict(legacy.input), dict(legacy.result)) == (
        "d2", "bot", {"endpoint": "embeddings"}, {"params": {}})
    (ev,) = seeded.optimize_decision_events(SINCE, UNTIL, ["d2"])
    assert (ev.decision_id, ev.id, ev.kind, ev.status, ev.cost_nano, ev.request_hash) == (
        "d2", "e2", "llm", "ok", 2000, "h1")
    (emb,) = seeded.optimize_embeddings(SINCE, UNTIL)
    assert (emb.id, emb.model, emb.request_hash, emb.cost_nano) == ("e4", "text-embedding-3-small", "x1", 5)


def test_assessment_shares(seeded: Store) -> None:
    assert seeded.assess_spend(SINCE) == AssessSpendRow(4, 6005, 0, 6000, 6005, 0, 6000)
    assert seeded.assess_decisions(SINCE) == [AssessDecisionRow("llm.request", "allow", 3)]
    assert seeded.assess_spend(UNTIL) == AssessSpendRow(0, 0, 0, 0, 0, 0, 0)


def test_an_empty_window_reads_zeroes_not_nulls(store: Store) -> None:
    assert store.optimize_agent_runs(SINCE, UNTIL, "nobody") == AgentRunsRow(0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0)
    assert store.optimize_loop_summary(SINCE, UNTIL, "nobody") == LoopSummaryRow(0, 0, 0, 0)
    assert store.optimize_model_costs(SINCE, UNTIL, *GPT, (1, 1, 1, 1, 1)) == [ModelCostRow(None, 0, 0, 0, 0, 0)]
