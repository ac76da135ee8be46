"""Model over-sizing asks for an equal outcome rate: no route to a small model whose runs succeed less."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from costplane.attribution.context import Context
from costplane.ledger import Store
from costplane.ledger.runtypes import OutcomeRecord
from costplane.optimize.detectors import run_detectors
from costplane.optimize.detectors.memory_source import MemorySource
from costplane.optimize.detectors.store_source import StoreSource
from costplane.optimize.findings import DetectorInput, Finding
from costplane.optimize.history import History
from costplane.optimize.synthetic import SyntheticHistory, SyntheticSpec, _Builder, synthetic_config, write
from costplane.pricing.catalog import Catalog

CATALOG = Catalog.load()
INPUTS = DetectorInput(synthetic_config(), CATALOG)


def triage(small_rate: float, large_rate: float, *, outcomes: bool = True) -> tuple[History, SyntheticHistory]:
    """Agent triage-bot: 400 one-call runs on gpt-4o-mini and 1,500 short one-call runs on gpt-4o; a run
    records `ticket_resolved` with the model's rate (none at all with `outcomes=False`)."""
    b = _Builder(SyntheticSpec(seed=5), CATALOG)
    rng = random.Random(5)
    for model, runs, rate in (("gpt-4o-mini", 400, small_rate), ("gpt-4o", 1500, large_rate)):
        for i in range(runs):
            ts = b.when()
            ctx = Context(team="support", agent="triage-bot", run=f"{model}-{i}")
            b.call(ts, ctx, model, 300, 100)
            if outcomes and rng.random() < rate:
                b.outcomes.append(OutcomeRecord(f"out-{model}-{i}", ts + timedelta(seconds=5), "ticket_resolved",
                                                Decimal(1), ctx))
    end = b.spec.start + timedelta(days=b.spec.days)
    synthetic = SyntheticHistory(b.spec.start, end, tuple(b.decisions), tuple(b.events), outcomes=tuple(b.outcomes))
    return History.build(b.spec.start, end, b.decisions, b.events, b.outcomes), synthetic


def oversizing(history: History) -> list[Finding]:
    return run_detectors(history, INPUTS, ["model_oversizing"])


def test_equal_outcome_rates_report_both_rates() -> None:
    [finding] = oversizing(triage(0.8, 0.8)[0])
    assert finding.evidence["small_model"] == "gpt-4o-mini"
    assert finding.evidence["outcome_rate_small"].endswith("of 400 runs)")
    assert finding.evidence["outcome_rate_large"].endswith("of 1500 runs)")


def test_a_small_model_that_resolves_fewer_tickets_is_not_recommended() -> None:
    assert oversizing(triage(0.5, 0.9)[0]) == []


def test_a_better_small_model_is_recommended() -> None:
    assert len(oversizing(triage(0.95, 0.7)[0])) == 1


def test_without_outcomes_the_rate_is_not_measured() -> None:
    [finding] = oversizing(triage(0.0, 0.0, outcomes=False)[0])
    assert finding.evidence["outcome_rate"] == "not measured: the agent records no outcomes"


def test_store_counts_runs_as_memory_does(store: Store) -> None:
    _, synthetic = triage(0.5, 0.9)
    # an outcome outside the window and one of another agent on a counted run must not count
    resolved = {o.context.run for o in synthetic.outcomes}
    unresolved = [f"gpt-4o-{i}" for i in range(1500) if f"gpt-4o-{i}" not in resolved][:2]
    late = synthetic.end + timedelta(hours=1)
    extra = (OutcomeRecord("late", late, "ticket_resolved", Decimal(1), Context(agent="triage-bot", run=unresolved[0])),
             OutcomeRecord("other", synthetic.start + timedelta(hours=1), "ticket_resolved", Decimal(1),
                           Context(agent="other-bot", run=unresolved[1])))
    write(store, SyntheticHistory(synthetic.start, synthetic.end, synthetic.decisions, synthetic.events,
                                  outcomes=(*synthetic.outcomes, *extra)))
    memory = MemorySource(History.build(synthetic.start, synthetic.end, synthetic.decisions, synthetic.events,
                                        (*synthetic.outcomes, *extra)))
    source = StoreSource(store, memory.history)
    for model in ("gpt-4o-mini", "gpt-4o", "o1-mini"):
        expected = memory.model_outcome_runs("triage-bot", "openai", model)
        assert source.model_outcome_runs("triage-bot", "openai", model) == expected
    runs, done = memory.model_outcome_runs("triage-bot", "openai", "gpt-4o")
    assert (runs, done) == (1500, len([r for r in resolved if r and r.startswith("gpt-4o-") and "mini" not in r]))
    assert memory.model_outcome_runs("triage-bot", "openai", "o1-mini") == (0, 0)
