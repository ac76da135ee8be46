"""The detectors' store reads added for speed (schema v11 cache columns, per-run sums in SQL, flat-price
trimming) return exactly what the in-memory definitions give, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from costplane.attribution.context import Context
from costplane.ledger import CostEvent, DecisionRecord, Store, codec, open_store
from costplane.ledger.migrations import LATEST
from costplane.optimize.detectors import DETECTORS
from costplane.optimize.detectors import rows as rows_module
from costplane.optimize.detectors.memory_source import MemorySource
from costplane.optimize.detectors.prefetch import prefetch
from costplane.optimize.detectors.rows import flat_femto, trim_saving
from costplane.optimize.detectors.source import UsageRow
from costplane.optimize.detectors.store_source import StoreSource
from costplane.optimize.history import History
from costplane.pricing.catalog import Catalog
from costplane.pricing.types import TokenUsage

T0 = datetime(2025, 3, 1, tzinfo=UTC)
T1 = T0 + timedelta(days=30)
CATALOG = Catalog.load()


def _decision(i: int, input_: dict[str, Any], *, agent: str | None = "bot", team: str | None = "t",
              result: dict[str, Any] | None = None, effect: str = "allow", status: int = 200,
              hook: str = "llm.request") -> DecisionRecord:
    return DecisionRecord(id=f"dec_{i:03d}", ts=T0 + timedelta(hours=i), hook=hook, effect=effect,
                          bundle_revision="r", context=Context(agent=agent, team=team), input=input_,
                          result=result or {"params": {}}, status_code=status)


def _event(i: int, decision: str, cost: int, *, status: str = "ok", kind: str = "llm",
           seconds: int = 1, agent: str | None = "bot", run: str | None = None) -> CostEvent:
    return CostEvent(id=f"evt_{i:03d}", ts=T0 + timedelta(hours=i % 700, seconds=seconds),
                     context=Context(agent=agent, team="t", run=run), provider="openai", model="gpt-4o",
                     cost_nano=cost, usage=TokenUsage(10, 5), decision_id=decision, status=status, kind=kind,
                     request_hash=f"rh{i % 3}")


def _cache_cases() -> tuple[list[DecisionRecord], list[CostEvent]]:
    """Every way a decision is or is not a cacheable request (see `source.py`)."""
    h = {"cache_hash": "h1"}
    decisions = [
        _decision(0, h), _decision(1, h, agent=None), _decision(2, {"cache_hash": 123}),
        _decision(3, {"cache_hash": ""}), _decision(4, {"cache_hash": None}),
        _decision(5, h, result={"params": {"cache": True}}), _decision(6, h, result={"params": {"cache": False}}),
        _decision(7, h, effect="deny"), _decision(8, h, status=429), _decision(9, {"cache_hash": "h2"}),
        _decision(10, {"cache_hash": "h2"}), _decision(11, {"cache_hash": "h3"}),
        _decision(12, h, agent=None, team=None),
        _decision(13, h), _decision(14, h, hook="llm.response"), _decision(15, h, agent="", team="blank-agent"),
        _decision(16, {"cache_hash": "h1", "params": {"temperature": 0.7}}),
    ]
    events = [_event(i, f"dec_{i:03d}", 1000 + i) for i in range(17) if i != 13]  # 13: no event at all
    events += [_event(50, "dec_009", 7, status="error"), _event(51, "dec_010", 0, kind="cache_hit"),
               _event(52, "dec_011", 333, seconds=2)]  # 11: two events, costs summed
    return decisions, events


def _write(store: Store, decisions: Sequence[DecisionRecord], events: Sequence[CostEvent]) -> None:
    for d in decisions:
        store.record_decision(d)
    store.record_nodes((), events)


def test_v11_upgrades_a_v10_store_and_cache_rows_match_memory(store_url: Callable[[], str]) -> None:
    decisions, events = _cache_cases()
    late = [_decision(20, {"cache_hash": "h9"}),
            _decision(21, {"cache_hash": "h9"}, result={"params": {"cache": True}})]
    late_events = [_event(20, "dec_020", 5), _event(21, "dec_021", 6)]
    store = open_store(store_url())
    try:
        store.migrate(target=10)  # type: ignore[call-arg]
        assert store.schema_version() == 10
        _write(store, decisions, events)  # written before the columns existed
        store.migrate()  # through v11 (the cache columns) to the latest version
        assert store.schema_version() == LATEST >= 11
        _write(store, late, late_events)  # and after
        memory = MemorySource(History.build(T0, T1, [*decisions, *late], [*events, *late_events]))
        source = StoreSource(store, memory.history)
        expected = memory.cache_rows()
        assert [r[1] for r in expected] == ["dec_000", "dec_001", "dec_006", "dec_011", "dec_015", "dec_016",
                                            "dec_020"]
        assert expected[3][5] == 1011 + 333 and expected[1][2:4] == ("team", "t")
        assert source.cache_rows() == expected
    finally:
        store.close()


def test_sqlite_cache_read_is_served_by_the_covering_index(tmp_path: Any) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'plan.db'}")
    try:
        store.migrate()
        seen: list[tuple[str, Sequence[Any]]] = []
        read = store._rows  # type: ignore[attr-defined]

        def spy(sql: str, params: Sequence[Any]) -> Any:
            seen.append((sql, params))
            return read(sql, params)

        store._rows = spy  # type: ignore[attr-defined]
        store.optimize_cacheable(codec.to_us(T0), codec.to_us(T1))
        sql, params = seen[0]

        def read_all(query: str, args: Sequence[Any] = ()) -> list[Any]:
            return store._read(lambda tx: tx.all(query, args))  # type: ignore[attr-defined, no-any-return]

        plan = " ".join(str(row[-1]) for row in read_all(f"EXPLAIN QUERY PLAN {sql}", params))
        assert "INDEX decisions_cacheable" in plan and "TEMP B-TREE" not in plan, plan
        # `USING INDEX` (not COVERING: the partial index's terms name other columns), yet no column of
        # the decisions table itself is read: its cursor is opened, and never positioned on a row
        root = read_all("SELECT rootpage FROM sqlite_master WHERE name = 'decisions'")[0][0]
        program = read_all(f"EXPLAIN {sql}", params)
        tables = {row[2] for row in program if row[1] == "OpenRead" and row[3] == root}
        assert tables and not [row for row in program if row[1] == "Column" and row[2] in tables]
        assert not [row for row in program if row[1] in ("SorterOpen", "SeekRowid", "NotExists")]
    finally:
        store.close()


def test_run_figures_match_memory(store: Store) -> None:
    """Calls of a run at the same instant are ordered by id, in SQL as in memory; a call without a
    request hash is a distinct request."""
    rng = random.Random(3)
    events = []
    for i in range(300):
        run = f"run-{rng.randrange(12)}"
        events.append(CostEvent(id=f"evt_{rng.randrange(10**6):06d}_{i}", ts=T0 + timedelta(minutes=rng.randrange(40)),
                                context=Context(agent=rng.choice(["a", "b"]), run=run), provider="openai",
                                model="gpt-4o", cost_nano=rng.randrange(1, 10**6), usage=TokenUsage(1, 1),
                                decision_id=f"dec_{i}", request_hash=rng.choice([None, "h1", "h2", "h3", "h4"])))
    store.record_nodes((), events)
    memory = MemorySource(History.build(T0, T1, [], events))
    source = StoreSource(store, memory.history)
    for agent in ("a", "b"):
        assert sorted(source.run_sizes(agent)) == sorted(memory.run_sizes(agent))
        for baseline in (0, 1, 3, 7, 40):
            assert source.run_excess(agent, baseline) == memory.run_excess(agent, baseline)
        assert source.run_steps(agent) == memory.run_steps(agent) and len(memory.run_steps(agent)) > 1
        assert source.run_keys(agent) == memory.run_keys(agent) > 5  # hashes repeat, None ones count alone
        assert source.loop_summary(agent) == memory.loop_summary(agent)
    assert source.run_excess("a", 0) == sum(e.cost_nano for e in events if e.context.agent == "a") > 0


@pytest.mark.parametrize(("model", "provider"), [("gpt-4o", "openai"), ("claude-3-5-sonnet-latest", "anthropic")])
def test_flat_price_trimming_equals_pricing_each_row(model: str, provider: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert flat_femto(CATALOG, model, provider) is not None
    rng = random.Random(5)
    rows: list[UsageRow] = []
    for i in range(2000):
        inp = rng.randrange(0, 9000)
        read = rng.randrange(0, inp + 1) if rng.random() < 0.3 else 0
        write = rng.randrange(0, inp - read + 1) if rng.random() < 0.2 else 0
        out = rng.randrange(0, 700)
        rows.append((codec.to_us(T0) + i, f"e{i}", None, inp, out, read, write, rng.randrange(0, out + 1), 0))
    trims = [rng.choice([0, 1, 7, 333, 5000, 10**6]) for _ in rows]
    flat = trim_saving(CATALOG, model, provider, rows, trims)
    monkeypatch.setattr(rows_module, "flat_femto", lambda *a: None)  # force the per-row PriceSheet path
    assert trim_saving(CATALOG, model, provider, rows, trims) == flat
    assert flat[0] > 0 and flat[1] > 0


def test_prefetch_fills_the_memo_once_on_the_worker_and_errors_reach_the_asker(store: Store) -> None:
    decisions, events = _cache_cases()
    _write(store, decisions, events)
    history = History.build(T0, T1, decisions, events)
    source = StoreSource(store, history)
    prefetch(source, list(DETECTORS))
    module = importlib.import_module("costplane.optimize.detectors.prefetch")  # `detectors.prefetch`: the function
    module._worker(store).submit(lambda: None).result()  # the worker is done with the jobs
    assert {("embeddings",), ("cache",), ("agents",)} <= set(source._memo)
    assert source.cache_rows() == MemorySource(history).cache_rows()

    computed: list[int] = []
    gate = threading.Event()

    def slow() -> int:
        computed.append(1)
        gate.wait(5)
        return 42

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(source._once(("k",), slow))) for _ in range(4)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert computed == [1] and results == [42] * 4

    def broken() -> int:
        raise RuntimeError("boom")

    for _ in range(2):  # computed once, raised to every caller
        with pytest.raises(RuntimeError, match="boom"):
            source._once(("bad",), broken)



def test_rows_one_detector_reads_are_taken_not_held(store: Store) -> None:
    """Cacheable and embedding rows (hundreds of MB at 10 M events) leave the memo when their reader
    takes them; reading ahead after that does not read them again, a second reader reads afresh."""
    decisions, events = _cache_cases()
    _write(store, decisions, events)
    history = History.build(T0, T1, decisions, events)
    expected = MemorySource(history).cache_rows()
    source = StoreSource(store, history)
    reads: list[int] = []
    real = store.optimize_cacheable

    def counted(since_us: int, until_us: int) -> list[Any]:
        reads.append(1)
        return real(since_us, until_us)

    store.optimize_cacheable = counted  # type: ignore[method-assign]
    source.read_cache_rows_ahead()
    source.read_cache_rows_ahead()
    assert len(reads) == 1
    assert source.cache_rows() == expected and expected
    assert not any(isinstance(v, Future) and v.done() and v.result() for k, v in source._memo.items()
                   if k == ("cache",))  # the rows are no longer held
    source.read_cache_rows_ahead()  # the worker arriving after the reader: nothing to do
    assert len(reads) == 1
    assert source.cache_rows() == expected  # another run of the detector reads them again
    assert len(reads) == 2
    source.read_embedding_rows_ahead()
    assert source.embedding_rows() == MemorySource(history).embedding_rows()
    assert ("embeddings",) in source._memo and not isinstance(source._memo[("embeddings",)], Future)


def _call(id_: str, agent: str, run: str, at: timedelta, cost: int, key: str | None) -> CostEvent:
    return CostEvent(id=id_, ts=T0 + at, context=Context(agent=agent, run=run), provider="openai", model="gpt-4o",
                     cost_nano=cost, usage=TokenUsage(1, 1), decision_id=f"dec_{id_}", request_hash=key)


def test_one_pass_per_agent_gives_every_run_figure(store: Store) -> None:
    """`optimize_agent_runs`: a key repeated 3 times at one instant (the first by id is not the first
    written), calls without a hash (distinct, never repeats), a run crossing both window edges; an
    agent whose runs never repeat is not scanned a second time for its loops."""
    hour = timedelta(hours=1)
    events = [
        _call("e3", "a", "r1", hour, 30, "k"), _call("e1", "a", "r1", hour, 10, "k"),
        _call("e2", "a", "r1", hour, 20, "k"), _call("e4", "a", "r1", 2 * hour, 7, None),
        _call("e5", "a", "r1", 3 * hour, 5, "m"),
        _call("e6", "a", "r2", -hour, 11, "x"), _call("e7", "a", "r2", 4 * hour, 12, "x"),
        _call("e8", "a", "r2", T1 - T0 + hour, 13, "x"),
        _call("e9", "a", "r3", 5 * hour, 1, None), _call("f1", "a", "r3", 5 * hour, 2, None),
        _call("g1", "b", "s1", hour, 3, "k"), _call("g2", "b", "s1", 2 * hour, 4, "m"),
        _call("g3", "b", "s2", 3 * hour, 5, "k"),
    ]
    store.record_nodes((), events)
    memory = MemorySource(History.build(T0, T1, [], [e for e in events if T0 <= e.ts < T1]))  # as loaded
    source = StoreSource(store, memory.history)
    loops: list[str] = []
    read = store.optimize_loop_summary

    def spy(since_us: int, until_us: int, agent: str) -> Any:
        loops.append(agent)
        return read(since_us, until_us, agent)

    store.optimize_loop_summary = spy  # type: ignore[method-assign]
    assert source.loop_summary("a") == memory.loop_summary("a") == (2, 50, 2, 1)  # e2 + e3 repeat e1
    assert source.loop_summary("b") == memory.loop_summary("b") == (0, 0, 0, 0) and loops == ["a"]
    assert source.run_keys("a") == memory.run_keys("a") == 3  # r1: k, m and the call without a hash
    assert source.run_keys("b") == memory.run_keys("b") == 2
    for agent in ("a", "b"):
        got, expected = source.run_summary(agent), memory.run_summary(agent)
        assert got[:2] == expected[:2] and got.trend.n == expected.trend.n
        assert got.trend == pytest.approx(expected.trend)
        assert source.run_steps(agent) == memory.run_steps(agent)
    assert source.run_summary("a")[:2] == (3, 8)  # e6 and e8 lie outside the window
    assert source.run_steps("a") == {5: 1, 1: 1, 2: 1}
