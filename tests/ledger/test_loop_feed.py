"""The loop guard's filter and its feed: a (run, request hash) pair no process committed a call of
in the window counts 0 without a store read; every other count is the store's, unchanged.

The filter (ledger/loopfilter.py) is a Bloom filter per time bucket: no false negatives, forgets
what is past the window. On PostgreSQL (schema v18) a row trigger notifies every call of a run;
`LoopFeed` listens, reads the window so far, and is trusted only once caught up — and again only
after catching up anew when its connection was lost. On SQLite `PollingLoopFeed` reads the table's
tail every 50 ms, and reads the window again when the tail it saw was deleted."""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from ledger_helpers import NOW, claim, decision, event, reservation

from costplane.attribution.context import Context
from costplane.ledger import Store
from costplane.ledger.base import SqlStore
from costplane.ledger.contracts import BudgetLedger
from costplane.ledger.leases import LeasedLedger, LeaseSettings
from costplane.ledger.loopfeed import LoopFeed, parse_payload
from costplane.ledger.loopfilter import LoopFilter
from costplane.ledger.loopindex import LoopIndexedLedger
from costplane.ledger.looppoll import PollingLoopFeed
from costplane.ledger.postgres import PostgresStore
from costplane.ledger.sqlite import SqliteStore

PG_ONLY = pytest.mark.parametrize("store_kind", [pytest.param("postgres", marks=pytest.mark.postgres)],
                                  indirect=True)
LIMIT = 10**15


def test_the_filter_never_misses_a_pair_and_forgets_the_past() -> None:
    loops = LoopFilter(600, bits=1 << 14)
    rng = random.Random(7)
    added = [(f"run-{rng.randrange(10**9)}", f"{rng.getrandbits(128):032x}",
              NOW + timedelta(seconds=rng.uniform(0, 600))) for _ in range(1_000)]
    for run, request_hash, ts in added:
        loops.add(run, request_hash, ts)
    assert all(loops.maybe(run, request_hash, NOW) for run, request_hash, _ in added)  # no false negatives
    assert all(loops.maybe(run, request_hash, ts) for run, request_hash, ts in added)
    unknown = sum(loops.maybe(f"other-{i}", "h", NOW) for i in range(1_000))
    assert unknown < 100  # false positives: rare at this load (about 3 calls per kbit)
    late = NOW + timedelta(seconds=700)  # after every call: none of them in a window starting here
    assert not any(loops.maybe(run, request_hash, late) for run, request_hash, _ in added[:100])
    loops.prune(NOW + timedelta(seconds=1_400))
    assert len(loops) == 0 and not loops.maybe(*added[0][:2], NOW)
    with pytest.raises(ValueError, match="bits: expected a power of two"):
        LoopFilter(600, bits=1000)
    with pytest.raises(ValueError, match="window_seconds"):
        LoopFilter(0)


def test_notification_payloads() -> None:
    assert parse_payload("abc123 1748779200000000 run with spaces") == ("abc123", NOW, "run with spaces")
    assert parse_payload("garbage") is None and parse_payload("h notanumber r") is None


def _leased(store: Store, directory: Path) -> LeasedLedger:
    assert isinstance(store, SqlStore)
    settings = LeaseSettings(enabled=True, journal_dir=directory, flush_interval=3600.0, hot_per_second=1)
    return LeasedLedger(store, settings)


def _feed(store: Store, retry: float = 1.0) -> LoopFeed | PollingLoopFeed:
    feed: LoopFeed | PollingLoopFeed
    if isinstance(store, PostgresStore):
        feed = LoopFeed(store, LoopFilter(600), clock=lambda: NOW, retry_seconds=retry).start()
    else:
        assert isinstance(store, SqliteStore)
        feed = PollingLoopFeed(store, LoopFilter(600), clock=lambda: NOW, poll_seconds=0.01,
                               retry_seconds=retry).start()
    assert feed.wait_ready(30)
    return feed


def _until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _settle(ledger: BudgetLedger, run: str, request_hash: str, seconds: int = 0) -> None:
    res = reservation([claim("team", 1000, limit_nano=LIMIT)])
    assert ledger.reserve(res, decision(res.decision_id)).ok
    ledger.settle(res.id, event(100, rid=res.id, ts=NOW + timedelta(seconds=seconds), ctx=Context(run=run),
                                request_hash=request_hash))


def test_processes_see_each_others_calls_and_skip_only_the_reads_that_find_nothing(
        store: Store, tmp_path: Path) -> None:
    store.record_event(event(1, ctx=Context(run="r-before"), request_hash="h-before"))  # before any feed: caught up
    a_leased, b_leased = _leased(store, tmp_path / "a"), _leased(store, tmp_path / "b")
    a = LoopIndexedLedger(a_leased, _feed(store))  # two serving processes with leases on
    b_feed = _feed(store)
    b = LoopIndexedLedger(b_leased, b_feed)
    c = LoopIndexedLedger(store, _feed(store))  # and one with leases off: the store behind the filter
    plain = _leased(store, tmp_path / "plain")  # the answer without a filter: the store's count
    since = NOW - timedelta(minutes=5)
    try:
        assert b.count_recent_requests("r-before", "h-before", since) == 1
        assert c.count_recent_requests("r-before", "h-before", since) == 1
        for second in range(3):
            _settle(a, "r-loop", "h-same", second)
        assert a.count_recent_requests("r-loop", "h-same", since) == 3  # its own calls at once, applied or not
        a_leased.flush()
        _until(lambda: b_feed.filter.maybe("r-loop", "h-same", since), "a's batch at the other process's feed")
        assert b.count_recent_requests("r-loop", "h-same", since) == 3  # the other process's calls
        assert b.count_recent_requests("r-loop", "h-same", NOW + timedelta(seconds=1)) == 2
        _until(lambda: c.feed.filter.maybe("r-loop", "h-same", since), "the notifications at the third process")
        assert c.count_recent_requests("r-loop", "h-same", since) == 3
        _settle(c, "r-loop", "h-same", 3)  # leases off: settled in the store at once, in c's filter at once
        assert c.count_recent_requests("r-loop", "h-same", since) == 4

        # differential: over many pairs, seen or not, every count is the store's (the filter only
        # ever skips a read that would have found 0)
        rng = random.Random(11)
        pairs = [(f"run-{rng.randrange(6)}", f"h-{rng.randrange(40)}") for _ in range(60)]
        for run, request_hash in pairs[:30]:
            _settle(a, run, request_hash, rng.randrange(60))
        a_leased.flush()
        for feed in (b_feed, c.feed):
            _until(lambda feed=feed: all(feed.filter.maybe(r, h, since) for r, h in pairs[:30]),
                   "the notifications of a's second batch")
        saved = b.reads_saved, c.reads_saved
        for run, request_hash in pairs:
            expected = plain.count_recent_requests(run, request_hash, since)
            assert b.count_recent_requests(run, request_hash, since) == expected, (run, request_hash)
            assert c.count_recent_requests(run, request_hash, since) == expected, (run, request_hash)
        assert b.reads_saved > saved[0] and c.reads_saved > saved[1]  # pairs never sent: answered without a read
        assert b.count_recent_requests("never", "sent", since) == 0
    finally:
        for ledger in (a, b, c):
            ledger.close()
        plain.close()


@PG_ONLY
def test_a_feed_that_lost_its_connection_is_trusted_again_only_after_catching_up(
        store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="costplane.store")
    feed = _feed(store, retry=0.5)
    ledger = LoopIndexedLedger(_leased(store, tmp_path / "j"), feed)
    since = NOW - timedelta(minutes=5)
    try:
        assert feed.catch_ups == 1
        pid = feed.backend_pid
        assert pid is not None
        backend = store.connect()
        try:
            backend.execute("SELECT pg_terminate_backend(%s)", (pid,))
        finally:
            backend.close()
        _until(lambda: not feed.ready, "the feed to notice its connection is gone")
        # committed while nobody listened: its notification is lost, the catch-up finds it
        store.record_event(event(1, ctx=Context(run="r-gap"), request_hash="h-gap"))
        assert ledger.count_recent_requests("r-gap", "h-gap", since) == 1  # not ready: the store is read
        _until(lambda: feed.ready and feed.catch_ups >= 2, "the feed to listen and catch up again")
        assert feed.filter.maybe("r-gap", "h-gap", since)
        assert ledger.count_recent_requests("r-gap", "h-gap", since) == 1
        said = [r.getMessage() for r in caplog.records if r.name == "costplane.store"]
        assert sum("loop feed lost its connection" in m for m in said) == 1  # once per outage, not per retry
        assert sum("loop feed listening again" in m for m in said) == 1
    finally:
        ledger.close()


@PG_ONLY
def test_the_trigger_notifies_calls_of_a_run_only(store: Store) -> None:
    assert isinstance(store, PostgresStore)
    listener = store.connect()
    try:
        row = listener.execute("SELECT 'costplane_loop.' || left(md5(current_schema()), 16)").fetchone()
        assert row is not None
        listener.execute(f'LISTEN "{row[0]}"')
        store.record_event(event(1, ctx=Context(run="r1"), request_hash="h1"))
        store.record_event(event(1, ctx=Context(team="ml"), request_hash="h2"))  # no run: not a loop candidate
        store.record_event(event(1, ctx=Context(run="r3")))  # no request hash
        got = [n.payload for n in listener.notifies(timeout=2.0, stop_after=1)]
        got += [n.payload for n in listener.notifies(timeout=0.5)]
        assert [parse_payload(p) for p in got] == [("h1", NOW, "r1")]
    except psycopg.Error:
        raise
    finally:
        listener.close()


@PG_ONLY
def test_the_feed_starts_at_the_first_loop_count(store: Store) -> None:
    assert isinstance(store, PostgresStore)
    feed = LoopFeed(store, LoopFilter(600), clock=lambda: NOW)
    ledger = LoopIndexedLedger(store, feed)  # as open_budget_ledger builds it: nothing listens yet
    try:
        assert feed.backend_pid is None and not feed.ready
        since = NOW - timedelta(minutes=5)
        assert ledger.count_recent_requests("r", "h", since) == 0  # read from the store; starts the feed
        _until(lambda: feed.ready, "the feed to catch up")
        saved = ledger.reads_saved
        assert ledger.count_recent_requests("r", "h", since) == 0 and ledger.reads_saved == saved + 1
    finally:
        ledger.close()


@pytest.mark.parametrize("store_kind", ["sqlite"], indirect=True)
def test_the_sqlite_feed_reads_the_window_again_when_the_tail_it_saw_is_deleted(store: Store) -> None:
    assert isinstance(store, SqliteStore)
    since = NOW - timedelta(minutes=5)
    store.record_event(event(1, ctx=Context(run="r-1"), request_hash="h-1"))
    feed = PollingLoopFeed(store, LoopFilter(600), clock=lambda: NOW, poll_seconds=3600)  # polled by hand
    ledger = LoopIndexedLedger(store, feed)
    try:
        assert ledger.count_recent_requests("r-1", "h-1", since) == 1  # not ready yet: the store's count
        assert feed.wait_ready(30) and feed.catch_ups == 1
        assert ledger.count_recent_requests("r-1", "h-1", since) == 1
        store.record_event(event(1, ctx=Context(run="r-2"), request_hash="h-2"))  # another process's call
        assert feed.poll() and feed.filter.maybe("r-2", "h-2", since)
        assert ledger.count_recent_requests("r-2", "h-2", since) == 1
        # the newest row is deleted and its row id reused by the next call: the poll must notice
        other = sqlite3.connect(store.path)
        other.execute("DELETE FROM cost_events WHERE rowid = (SELECT MAX(rowid) FROM cost_events)")
        other.commit()
        other.close()
        store.record_event(event(1, ctx=Context(run="r-3"), request_hash="h-3"))
        assert not feed.poll() and not feed.ready  # the row it saw last is not there as it was
        assert ledger.count_recent_requests("r-3", "h-3", since) == 1  # the store's count meanwhile
        feed.catch_up()
        assert feed.catch_ups == 2 and feed.filter.maybe("r-3", "h-3", since)
        assert ledger.count_recent_requests("r-3", "h-3", since) == 1
        assert ledger.count_recent_requests("never", "seen", since) == 0 and ledger.reads_saved >= 1
    finally:
        ledger.close()
