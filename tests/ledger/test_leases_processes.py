"""Lease-based budgets across processes (SQLite and PostgreSQL): three processes charge one hard
budget that fits ~100 of 500 calls; one is killed with SIGKILL mid-burst and started again. At
every sampled instant spend + reservations + leases stay within the limit; after the restart every
answered call has exactly one cost event and no headroom is held."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ledger_helpers import claim, decision, event, reservation

from costplane.ledger import open_store
from costplane.ledger.base import SqlStore
from costplane.ledger.leases import LeasedLedger, LeaseSettings

AMOUNT = 1_000_003
LIMIT = 100 * AMOUNT + AMOUNT // 2
TTL = 2


def charge(url: str, journal: str, attempts: int, threads: int, start_at: float, answered: str,
           die_after: int, owner: str | None = None) -> None:
    """One serving process: `attempts` reserve→settle calls from `threads` threads through a
    LeasedLedger; each answered call's event id is appended to `answered`. die_after > 0: SIGKILL
    this process once that many calls were answered."""
    store = open_store(url)
    assert isinstance(store, SqlStore)
    ledger = LeasedLedger(store, LeaseSettings(enabled=True, ttl_seconds=TTL, journal_dir=Path(journal),
                                               flush_interval=0.02), owner=owner)
    ledger.recover()
    out = os.open(answered, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
    count = [0]
    lock = threading.Lock()
    per_thread = [attempts // threads + (1 if i < attempts % threads else 0) for i in range(threads)]

    def work(n: int) -> None:
        for _ in range(n):
            res = reservation([claim("shared", AMOUNT, limit_nano=LIMIT)])
            if not ledger.reserve(res, decision(res.decision_id)).ok:
                time.sleep(0.001)
                continue
            ev = event(AMOUNT, rid=res.id)
            ledger.settle(res.id, ev)
            os.write(out, f"{ev.id}\n".encode())  # the response went out
            with lock:
                count[0] += 1
                if die_after and count[0] >= die_after:
                    os.kill(os.getpid(), signal.SIGKILL)

    time.sleep(max(0.0, start_at - time.time()))
    workers = [threading.Thread(target=work, args=(n,)) for n in per_thread]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if die_after:  # the others took the budget first: die all the same, leases and journal as they are
        os.kill(os.getpid(), signal.SIGKILL)
    ledger.close()
    store.close()
    os.close(out)


def test_kill_9_of_one_of_three_processes_mid_burst_and_restart(store_url: Callable[[], str],
                                                                tmp_path: Path) -> None:
    url = store_url()
    store = open_store(url)
    store.migrate()
    journal = str(tmp_path / "journal")
    answered = [str(tmp_path / f"answered-{i}.txt") for i in range(4)]
    highest = [0]
    samples = [0]
    stop = threading.Event()
    c = claim("shared", AMOUNT, limit_nano=LIMIT)

    def sample() -> None:
        while not stop.is_set():
            (state,) = store.claim_states([c])
            highest[0] = max(highest[0], state.spent_nano + state.reserved_nano)
            samples[0] += 1
            stop.wait(0.002)

    ctx = multiprocessing.get_context("spawn")
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        start_at = time.time() + 2.0
        procs = [ctx.Process(target=charge, args=(url, journal, n, 4, start_at, answered[i], die, f"p-{i}"))
                 for i, (n, die) in enumerate([(167, 6), (167, 0), (166, 0)])]
        for p in procs:
            p.start()
        procs[0].join(timeout=50)
        assert procs[0].exitcode == -signal.SIGKILL
        # started again: it replays the dead journal (its own, under its old owner id) first
        again = ctx.Process(target=charge, args=(url, journal, 30, 2, 0.0, answered[3], 0))
        again.start()
        time.sleep(TTL + 0.5)
        assert store.leases_held("p-0") == {}  # type: ignore[attr-defined]  # the dead process holds nothing
        for p in (*procs[1:], again):
            p.join(timeout=50)
            assert p.exitcode == 0
    finally:
        stop.set()
        sampler.join()
    assert samples[0] > 10
    assert highest[0] <= LIMIT  # spend + reservations + leases, at every sampled instant
    ids = [line for path in answered if os.path.exists(path) for line in Path(path).read_text().split()]
    assert len(ids) == len(set(ids)) and ids
    events = store.count_events()
    assert all(store.get_event(eid) is not None for eid in ids)  # every answered call: exactly one event
    assert len(ids) <= events <= 100  # (a call journaled as the process died counts, unanswered)
    # a reservation of the direct path the dead process never settled is released at its expiry
    store.expire_reservations(datetime.now(UTC) + timedelta(minutes=10))
    (state,) = store.claim_states([c])
    assert (state.spent_nano, state.reserved_nano, state.calls) == (events * AMOUNT, 0, events)
    assert store.leases_held() == {}  # type: ignore[attr-defined]
    assert not [p for p in Path(journal).iterdir() if p.suffix == ".log"]  # every journal applied
    store.close()
