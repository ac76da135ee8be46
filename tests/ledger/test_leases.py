"""Lease-based budgets in one process (SQLite and PostgreSQL): admission from leases never pushes
spend + reservations + leases over a hard limit, every settlement is journaled and applied once,
dead processes' journals are replayed and their leases expire."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ledger_helpers import claim, decision, event, reservation

from costplane.config import ConfigError, parse_config
from costplane.ledger import Store
from costplane.ledger.base import SqlStore
from costplane.ledger.journal import Journal, orphans, read_segment
from costplane.ledger.lease_store import LeasedRecord
from costplane.ledger.leases import LeasedLedger, LeaseSettings, decode_record, encode_record
from costplane.ledger.loopindex import LoopIndexedLedger
from costplane.ledger.open import close_budget_ledger, open_budget_ledger, parse_ledger
from costplane.ledger.postgres import PostgresStore

AMOUNT = 1_000_003
LIMIT = 100 * AMOUNT + AMOUNT // 2  # fits exactly 100 worst-case calls (and half of a 101st)


def ledger(store: Store, directory: Path, **kw: object) -> LeasedLedger:
    assert isinstance(store, SqlStore)
    values: dict[str, object] = {"ttl_seconds": 30, "flush_interval": 0.01, "hot_per_second": 1}
    values.update(kw)
    settings = LeaseSettings(enabled=True, journal_dir=directory, **values)  # type: ignore[arg-type]
    return LeasedLedger(store, settings)


def used(store: Store) -> int:
    (state,) = store.claim_states([claim("shared", AMOUNT, limit_nano=LIMIT)])
    return state.spent_nano + state.reserved_nano


def test_500_concurrent_admissions_fit_exactly_and_never_overshoot(store: Store, tmp_path: Path) -> None:
    leased = ledger(store, tmp_path / "journal")
    settled: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    highest = [0]

    def sample() -> None:  # spend + reservations + leases, as any other process would see them
        while not stop.is_set():
            highest[0] = max(highest[0], used(store))
            stop.wait(0.002)

    def work(n: int) -> None:
        for _ in range(n):
            res = reservation([claim("shared", AMOUNT, limit_nano=LIMIT)])
            if not leased.reserve(res, decision(res.decision_id)).ok:
                continue
            ev = event(AMOUNT, rid=res.id)
            leased.settle(res.id, ev)
            with lock:
                settled.append(ev.id)

    sampler = threading.Thread(target=sample)
    sampler.start()
    workers = [threading.Thread(target=work, args=(500 // 16 + (1 if i < 500 % 16 else 0),)) for i in range(16)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    leased.close()
    stop.set()
    sampler.join()
    assert highest[0] <= LIMIT
    assert len(settled) == 100  # every worst-case call that fits, no more
    assert leased.leased > 0  # most were admitted in memory …
    assert leased.round_trips < leased.leased  # … with fewer store transactions than calls
    (state,) = store.claim_states([claim("shared", AMOUNT, limit_nano=LIMIT)])
    assert (state.spent_nano, state.reserved_nano, state.calls, state.concurrent) == (100 * AMOUNT, 0, 100, 0)
    assert all(store.get_event(eid) is not None for eid in settled) and store.count_events() == 100
    assert store.leases_held() == {}  # type: ignore[attr-defined]


def test_settled_cost_below_the_bound_returns_to_the_lease(store: Store, tmp_path: Path) -> None:
    leased = ledger(store, tmp_path / "journal")
    c = claim("shared", AMOUNT, limit_nano=LIMIT)
    for _ in range(300):  # each call costs a tenth of its bound: 300 fit, and only 30 bounds' worth is spent
        res = reservation([c])
        assert leased.reserve(res, decision(res.decision_id)).ok
        leased.settle(res.id, event(AMOUNT // 10, rid=res.id))
    leased.flush()
    assert used(store) <= LIMIT
    leased.close()
    (state,) = store.claim_states([c])
    assert (state.spent_nano, state.reserved_nano, state.calls) == (300 * (AMOUNT // 10), 0, 300)


def test_released_and_expired_admissions_give_headroom_back(store: Store, tmp_path: Path) -> None:
    leased = ledger(store, tmp_path / "journal")
    c = claim("shared", AMOUNT, limit_nano=LIMIT)
    res = reservation([c])
    d = decision(res.decision_id)
    assert leased.reserve(res, d).ok and leased.release(res.id) is True
    stale = reservation([c], at=datetime.now(UTC) - timedelta(hours=1))
    assert leased.reserve(stale, decision(stale.decision_id)).ok
    assert leased.expire_reservations(datetime.now(UTC)) >= 1
    leased.close()
    (state,) = store.claim_states([c])
    assert (state.spent_nano, state.reserved_nano, state.calls, state.concurrent) == (0, 0, 0, 0)
    assert [r.id for r in store.list_decisions()].count(d.id) == 1  # the decision is recorded all the same


def test_calls_and_concurrency_limits_stay_on_the_direct_path(store: Store, tmp_path: Path) -> None:
    leased = ledger(store, tmp_path / "journal")
    c = claim("conc", 1, limit_concurrent=3)
    held = [reservation([c]) for _ in range(5)]
    results = [leased.reserve(r, decision(r.decision_id)).ok for r in held]
    assert results == [True, True, True, False, False] and leased.leased == 0 and leased.direct == 5
    for r in held[:3]:
        assert leased.release(r.id)
    leased.close()
    (state,) = store.claim_states([c])
    assert (state.reserved_nano, state.calls, state.concurrent) == (0, 0, 0)


def test_soft_and_unlimited_claims_are_counted_when_applied(store: Store, tmp_path: Path) -> None:
    leased = ledger(store, tmp_path / "journal")
    hard, soft = claim("shared", AMOUNT, limit_nano=LIMIT), claim("soft", AMOUNT, limit_nano=AMOUNT, hard=False)
    for _ in range(3):
        res = reservation([hard, soft])
        assert leased.reserve(res, decision(res.decision_id)).ok
        leased.settle(res.id, event(500, rid=res.id))
    leased.close()
    states = store.claim_states([hard, soft])
    assert [(s.spent_nano, s.reserved_nano, s.calls) for s in states] == [(1500, 0, 3), (1500, 0, 3)]


def test_a_dead_process_journal_is_replayed_once_and_its_leases_end(store: Store, tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    dead = ledger(store, directory, flush_interval=3600.0)  # its writer never runs: all in the journal
    c = claim("shared", AMOUNT, limit_nano=LIMIT)
    ids = []
    for _ in range(20):
        res = reservation([c])
        assert dead.reserve(res, decision(res.decision_id)).ok
        ev = event(AMOUNT, rid=res.id)
        dead.settle(res.id, ev)
        ids.append(ev.id)
    assert store.count_events() == 0 and used(store) > 0  # held by its lease, nothing applied
    dead._journal.close()  # what the kernel does when the process dies: its lock is released
    assert [o.owner for o in orphans(directory, skip="nobody") if o.close(done=False) is None] == [dead.owner]
    heir = ledger(store, directory)
    assert heir.recover() == 20 and heir.recover() == 0  # replayed once
    assert store.count_events() == 20 and all(store.get_event(i) is not None for i in ids)
    (state,) = store.claim_states([c])
    assert (state.spent_nano, state.reserved_nano, state.calls) == (20 * AMOUNT, 0, 20)  # its lease ended
    assert not list(directory.glob(f"{dead.owner}.*"))
    heir.close()


def test_leases_of_a_process_that_stopped_renewing_expire(store: Store, tmp_path: Path) -> None:
    gone = ledger(store, tmp_path / "journal", ttl_seconds=2, flush_interval=3600.0)  # never renews
    c = claim("shared", AMOUNT, limit_nano=LIMIT)
    res = reservation([c])
    assert gone.reserve(res, decision(res.decision_id)).ok
    assert store.leases_held()  # type: ignore[attr-defined]
    assert store.expire_leases(datetime.now(UTC)) == 0  # type: ignore[attr-defined]  # not yet
    assert store.expire_leases(datetime.now(UTC) + timedelta(seconds=3)) == 1  # type: ignore[attr-defined]
    assert store.leases_held() == {} and used(store) == 0  # type: ignore[attr-defined]
    gone._stop.set()  # the process is gone

def test_a_live_journal_is_never_an_orphan(tmp_path: Path) -> None:
    live = Journal(tmp_path, "p-live")
    live.append({"x": 1})
    assert list(orphans(tmp_path)) == []
    sealed = live.rotate()
    assert sealed is not None and read_segment(sealed) == [{"x": 1}]
    with sealed.open("ab") as torn:
        torn.write(b'{"cut short')
    assert read_segment(sealed) == [{"x": 1}]  # a torn last line is skipped
    live.close()
    found = list(orphans(tmp_path))
    assert [o.owner for o in found] == ["p-live"]
    for o in found:
        o.close(done=False)


def test_records_round_trip_through_the_journal_encoding() -> None:
    c = claim("shared", AMOUNT, limit_nano=LIMIT)
    ev = event(5, response_id="chatcmpl-1", trace_id="t" * 32, span_id="s" * 16)
    d = decision()
    record = LeasedRecord(d, (c,), ("lease-1",), ev)
    back = decode_record(encode_record(record))
    assert back == record


def test_growing_a_leased_admission_makes_it_a_store_reservation(store: Store, tmp_path: Path) -> None:
    leased = ledger(store, tmp_path / "journal")
    c = claim("shared", AMOUNT, limit_nano=LIMIT)
    res = reservation([c])
    assert leased.reserve(res, decision(res.decision_id)).ok and leased.leased == 1
    before = used(store)
    grown = leased.grow_reservation(res.id, 1000, res.expires_at + timedelta(hours=1))
    assert grown.ok and used(store) == before + 1000  # moved from the lease, then grown: nothing else changed
    held = store.get_reservation(res.id)  # type: ignore[attr-defined]
    assert held is not None and held.claims[0].amount_nano == AMOUNT + 1000
    leased.accrue(res.id, event(400, rid=res.id), close=True)
    leased.close()
    (state,) = store.claim_states([c])
    assert (state.spent_nano, state.reserved_nano, state.calls, state.concurrent) == (400, 0, 1, 0)


def test_the_ledger_section_is_parsed_and_checked(tmp_path: Path) -> None:
    assert parse_ledger(None, tmp_path) == LeaseSettings(journal_dir=(tmp_path / ".costplane" / "journal").resolve())
    on = parse_ledger({"leases": "on", "lease_ttl": "10s", "journal": "j", "journal_fsync": True}, tmp_path)
    assert (on.enabled, on.ttl_seconds, on.journal_dir, on.fsync) == (True, 10, (tmp_path / "j").resolve(), True)
    assert parse_ledger({}, tmp_path, {"COSTPLANE_LEASES": "on"}).enabled
    for raw, named in (({"nope": 1}, "ledger.nope"), ({"leases": "maybe"}, "ledger.leases"),
                       ({"lease_ttl": "1s"}, "ledger.lease_ttl"), ({"lease_ttl": "soon"}, "ledger.lease_ttl"),
                       ({"journal": ""}, "ledger.journal")):
        with pytest.raises(ConfigError, match=named):
            parse_ledger(raw, tmp_path)


def _served(ledger: object) -> object:
    """What a PostgreSQL store's ledger is behind the loop guard's filter (SQLite: the ledger itself)."""
    return ledger.inner if isinstance(ledger, LoopIndexedLedger) else ledger


def test_open_budget_ledger_gives_the_store_or_a_lease_ledger_per_store(store: Store, tmp_path: Path) -> None:
    config = parse_config({})
    off = open_budget_ledger(config, store, LeaseSettings(journal_dir=tmp_path))
    assert _served(off) is store
    assert isinstance(off, LoopIndexedLedger)  # the loop guard's filter in front, fed by the store
    close_budget_ledger(off)
    on = open_budget_ledger(config, store, LeaseSettings(enabled=True, journal_dir=tmp_path))
    leased = _served(on)
    assert isinstance(leased, LeasedLedger)
    assert isinstance(on, LoopIndexedLedger)
    assert [p.parent for p in tmp_path.glob("*/*.lock")] == [leased.settings.journal_dir]  # one directory per store
    close_budget_ledger(on)
    assert leased._stop.is_set()  # closed through the wrapper: its journal applied, its leases given back


def test_a_cold_window_stays_on_the_direct_path_until_it_is_hot(store: Store, tmp_path: Path) -> None:
    leased = ledger(store, tmp_path / "journal", hot_per_second=4)
    c = claim("shared", AMOUNT, limit_nano=LIMIT)
    for _ in range(6):
        res = reservation([c])
        assert leased.reserve(res, decision(res.decision_id)).ok
        leased.settle(res.id, event(AMOUNT, rid=res.id))
    assert (leased.direct, leased.leased) == (3, 3)  # the fourth request in a second took a lease
    leased.close()
    (state,) = store.claim_states([c])
    assert (state.spent_nano, state.reserved_nano, state.calls) == (6 * AMOUNT, 0, 6)


def test_with_leases_turned_off_a_stopped_process_journal_is_still_applied(store: Store, tmp_path: Path) -> None:
    config = parse_config({})
    served = open_budget_ledger(config, store, LeaseSettings(enabled=True, journal_dir=tmp_path, hot_per_second=1,
                                                             flush_interval=3600.0))
    on = _served(served)
    assert isinstance(on, LeasedLedger)
    c = claim("shared", AMOUNT, limit_nano=LIMIT)
    res = reservation([c])
    assert on.reserve(res, decision(res.decision_id)).ok and on.leased == 1
    on.settle(res.id, event(AMOUNT, rid=res.id))
    on._journal.close()  # the process stops without closing its ledger
    assert store.count_events() == 0 and store.leases_held()  # type: ignore[attr-defined]
    off = open_budget_ledger(config, store, LeaseSettings(journal_dir=tmp_path))
    assert _served(off) is store
    (state,) = store.claim_states([c])
    assert (state.spent_nano, state.reserved_nano, state.calls) == (AMOUNT, 0, 1) and store.count_events() == 1
    assert store.leases_held() == {}  # type: ignore[attr-defined]
    on._stop.set()
    for ledger in (served, off):
        if isinstance(ledger, LoopIndexedLedger):
            ledger.feed.close()


def test_claim_states_read_the_process_own_settlements(store: Store, tmp_path: Path) -> None:
    leased = ledger(store, tmp_path / "journal", flush_interval=3600.0)
    c = claim("shared", AMOUNT, limit_nano=LIMIT)
    res = reservation([c])
    assert leased.reserve(res, decision(res.decision_id)).ok and leased.leased == 1
    leased.settle(res.id, event(700, rid=res.id))
    (state,) = leased.claim_states([c])
    assert (state.spent_nano, state.calls) == (700, 1)
    leased.close()


def test_journal_fsync_group_commits_settlements_from_many_threads(store: Store, tmp_path: Path) -> None:
    leased = ledger(store, tmp_path / "journal", fsync=True)
    c = claim("shared", AMOUNT, limit_nano=LIMIT)

    def work() -> None:
        for _ in range(10):
            res = reservation([c])
            if leased.reserve(res, decision(res.decision_id)).ok:
                leased.settle(res.id, event(1000, rid=res.id))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    leased.close()
    (state,) = store.claim_states([c])
    assert (state.spent_nano, state.reserved_nano, state.calls) == (80 * 1000, 0, 80) and store.count_events() == 80


def test_the_loop_guard_counts_settlements_not_yet_applied(store: Store, tmp_path: Path) -> None:
    from ledger_helpers import NOW

    from costplane.attribution.context import Context

    leased = ledger(store, tmp_path / "journal", flush_interval=3600, hot_per_second=0)
    c = claim("shared", AMOUNT, limit_nano=LIMIT)
    run = Context(team="ml", run="r-loop")
    for _ in range(3):
        res = reservation([c])
        assert leased.reserve(res, decision(res.decision_id)).ok
        leased.settle(res.id, event(AMOUNT // 10, rid=res.id, ctx=run, request_hash="h-same"))
    since = NOW - timedelta(minutes=1)
    assert store.count_recent_requests("r-loop", "h-same", since) == 0  # not applied yet
    assert leased.count_recent_requests("r-loop", "h-same", since) == 3
    leased.flush()
    assert store.count_recent_requests("r-loop", "h-same", since) == 3
    assert leased.count_recent_requests("r-loop", "h-same", since) == 3  # counted once, applied or not
    leased.close()


def test_the_writer_waits_for_a_fuller_batch_or_the_oldest_record_s_wait(store: Store, tmp_path: Path) -> None:
    import time

    c = claim("shared", AMOUNT, limit_nano=LIMIT)

    def settle_some(leased: LeasedLedger, n: int) -> None:
        for _ in range(n):
            res = reservation([c])
            assert leased.reserve(res, decision(res.decision_id)).ok
            leased.settle(res.id, event(AMOUNT // 10, rid=res.id))

    def applied_within(seconds: float, count: int) -> bool:
        deadline = time.monotonic() + seconds
        while store.count_events() < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    patient = ledger(store, tmp_path / "a", flush_interval=0.01, batch_records=10, batch_wait=100_000)
    settle_some(patient, 3)
    time.sleep(0.3)  # thirty writer intervals: three records are neither a full batch nor old enough
    assert store.count_events() == 0
    settle_some(patient, 7)  # ten pending: the next interval applies them
    assert applied_within(10, 10)
    patient.close()

    prompt = ledger(store, tmp_path / "b", flush_interval=0.01, batch_records=10_000, batch_wait=3)
    settle_some(prompt, 2)  # far from a full batch, applied once the oldest has waited three intervals
    assert applied_within(10, 12)
    prompt.close()


@pytest.mark.parametrize("store_kind", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_batch_applies_renews_and_reads_back_in_one_transaction(store: Store, tmp_path: Path) -> None:
    assert isinstance(store, PostgresStore)
    leased = ledger(store, tmp_path / "journal", flush_interval=3600.0, ttl_seconds=1)
    c = claim("shared", AMOUNT, limit_nano=LIMIT)
    for _ in range(8):  # hot: the window takes a lease
        res = reservation([c])
        assert leased.reserve(res, decision(res.decision_id)).ok
        leased.settle(res.id, event(AMOUNT // 10, rid=res.id))
    assert leased.leased > 0
    import time

    time.sleep(0.3)  # over a quarter of the lease's 1 s TTL gone: the batch renews it too
    before = store.transactions
    assert leased.flush() == 8
    assert store.transactions - before == 1  # events, decisions, counters, renewal and read-back together
    (state,) = leased.claim_states([c])
    assert (state.spent_nano, state.calls) == (8 * (AMOUNT // 10), 8)
    leased.close()


def test_the_writer_grows_a_busy_lease_before_a_request_finds_it_empty(store: Store, tmp_path: Path) -> None:
    leased = ledger(store, tmp_path / "journal", flush_interval=3600.0)  # the writer's interval never comes
    c = claim("shared", AMOUNT, limit_nano=10**6 * AMOUNT)

    def admit(n: int) -> None:
        for _ in range(n):
            res = reservation([c])
            assert leased.reserve(res, decision(res.decision_id)).ok
            leased.settle(res.id, event(AMOUNT, rid=res.id))  # the whole bound: nothing goes back to the lease

    admit(1)  # hot at once (one request a second): it carves the first lease, eight admissions' worth
    assert (leased.top_ups, leased.refills) == (1, 0)
    assert leased.refill() == 0  # seven admissions' worth free: not low yet
    admit(4)  # three left: under four admissions' worth
    assert leased.refill() == 1 and leased.refills == 1
    for _ in range(60):  # a steady stream, the writer passing between every three requests
        admit(3)
        leased.refill()
    assert leased.top_ups == 1 and leased.direct == 0  # no request waited for the store after the first
    assert leased.refills > 10
    leased.close()
    (state,) = store.claim_states([c])
    assert (state.spent_nano, state.calls, state.reserved_nano) == (185 * AMOUNT, 185, 0)
