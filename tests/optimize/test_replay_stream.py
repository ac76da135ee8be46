"""Store-backed replay: the batched stream equals the in-memory history, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from costplane.ledger import open_store
from costplane.optimize.detectors import run_detectors
from costplane.optimize.findings import DetectorInput
from costplane.optimize.history import History, load_history
from costplane.optimize.replay import replay, replay_store
from costplane.optimize.replay_request import from_recorded
from costplane.optimize.stream import iter_decisions, iter_requests
from costplane.optimize.synthetic import SyntheticHistory, SyntheticSpec, generate, synthetic_config, write
from costplane.policy.bundle import load_bundle
from costplane.pricing.catalog import Catalog

from .replay_helpers import table_counts

CATALOG = Catalog.load()
CONFIG = synthetic_config()
LAG = timedelta(minutes=15)


@pytest.fixture(scope="module")
def planted() -> SyntheticHistory:
    small = SyntheticSpec.all_patterns(control_calls=300, oversized_calls=200, faq_questions=10, inflation_calls=150,
                                       amplification_runs=40, chatter_runs=30, leaked_calls=100, days=10)
    history = generate(small, CATALOG)
    # three decisions at one instant, so a page boundary falls inside a run of equal timestamps
    first = history.decisions[0]
    twins = tuple(replace(history.decisions[i], ts=first.ts) for i in (1, 2))
    moved = {d.id for d in twins}
    events = tuple(replace(e, ts=first.ts) if e.decision_id in moved else e for e in history.events)
    return replace(history, decisions=(first, *twins, *history.decisions[3:]), events=events)


def _candidate(planted: SyntheticHistory, tmp_path: Path) -> Path:
    history = History.build(planted.start, planted.end, planted.decisions, planted.events)
    for finding in run_detectors(history, DetectorInput(CONFIG, CATALOG)):
        (tmp_path / f"{finding.detector}.yaml").write_text(finding.document)
    (tmp_path / "budget.yaml").write_text(
        'kind: Budget\nname: ml-daily\nscope: ctx.team == "ml"\namount: 0.3 USD\n'
        'window: {calendar: day, timezone: UTC}\n')
    return tmp_path


def test_stream_joins_every_request_with_its_events(store_url: Callable[[], str], planted: SyntheticHistory) -> None:
    store = open_store(store_url())
    try:
        store.migrate()
        write(store, planted)
        expected = [from_recorded(r) for r in load_history(store, planted.start, planted.end).requests]
        assert len(expected) == len(planted.decisions) and sum(r.cost_nano for r in expected) > 0
        for batch in (2, 7, 500):  # pages of 2: every boundary case, incl. the equal-ts run
            streamed = list(iter_requests(store, planted.start, planted.end, lag=LAG, batch=batch))
            assert streamed == expected  # every field replay reads, decoded from rows as from the records
        decisions = list(iter_decisions(store, ("llm.request",), planted.start, planted.end, batch=3))
        assert len(decisions) == len(planted.decisions) and len({d.id for d in decisions}) == len(decisions)
    finally:
        store.close()


def test_store_replay_matches_the_in_memory_replay_and_writes_nothing(
        store_url: Callable[[], str], planted: SyntheticHistory, tmp_path: Path) -> None:
    url = store_url()
    store = open_store(url)
    bundle = load_bundle(_candidate(planted, tmp_path))
    try:
        store.migrate()
        write(store, planted)
        before = table_counts(url)
        streamed = replay_store(store, planted.start, planted.end, bundle, CONFIG, CATALOG, batch=64, keep_changes=5)
        after = table_counts(url)
    finally:
        store.close()
    assert before == after and before["decisions"] == len(planted.decisions)  # nothing is written by a replay
    memory = replay(History.build(planted.start, planted.end, planted.decisions, planted.events), bundle, CONFIG,
                    CATALOG)
    assert memory.saved_nano > 0 and memory.by_cause["ml-daily"].requests > 0
    assert (streamed.requests, streamed.recorded_nano, streamed.replayed_nano, streamed.newly_admitted) == (
        memory.requests, memory.recorded_nano, memory.replayed_nano, memory.newly_admitted)
    assert streamed.changed == len(memory.changes)
    assert {k: v for k, v in streamed.to_json().items() if k != "changes"} == {
        k: v for k, v in memory.to_json().items() if k != "changes"}
    # bounded: only the 5 biggest changes are kept, and they are the 5 biggest
    assert [c.saved_nano for c in streamed.changes] == sorted((c.saved_nano for c in memory.changes),
                                                              reverse=True)[:5]


def test_events_later_than_the_lag_are_not_joined(store_url: Callable[[], str], planted: SyntheticHistory) -> None:
    """The documented bound: events up to `lag` after their decision are always joined; later ones are
    not guaranteed (with pages of one row, not joined)."""
    late = planted.decisions[5]
    events = tuple(replace(e, ts=late.ts + timedelta(hours=2)) if e.decision_id == late.id else e
                   for e in planted.events)
    store = open_store(store_url())
    try:
        store.migrate()
        write(store, replace(planted, events=events))
        streamed = {r.id: r for r in iter_requests(store, planted.start, planted.end, lag=LAG, batch=1)}
        wide = {r.id: r for r in iter_requests(store, planted.start, planted.end, lag=timedelta(hours=3), batch=50)}
    finally:
        store.close()
    assert streamed[late.id].usages == () and streamed[late.id].cost_nano == 0
    assert wide[late.id].usages and wide[late.id].cost_nano > 0


def test_events_without_a_decision_do_not_end_the_event_pages(store_url: Callable[[], str],
                                                             planted: SyntheticHistory) -> None:
    """Events with no decision (SDK or OTLP ones) are skipped, but still page the event cursor on."""
    loose = tuple(replace(e, id=f"{e.id}-sdk", decision_id=None) for e in planted.events[::3])
    store = open_store(store_url())
    try:
        store.migrate()
        write(store, replace(planted, events=planted.events + loose))
        expected = [from_recorded(r) for r in load_history(store, planted.start, planted.end).requests]
        for batch in (3, 10):
            assert list(iter_requests(store, planted.start, planted.end, lag=LAG, batch=batch)) == expected
    finally:
        store.close()
