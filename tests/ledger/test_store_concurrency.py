"""Budgets hold under concurrency (threads, processes) and settled events survive kill -9."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

from ledger_helpers import NOW, claim, event, hammer, reserve

from costplane.ledger import Store, open_store

AMOUNT = 1_000_003  # an odd amount so sums are easy to tell apart
LIMIT = 100 * AMOUNT + AMOUNT // 2  # fits exactly 100 reservations (and half of a 101st)


def _final(store: Store) -> tuple[int, int, int, int]:
    (s,) = store.claim_states([claim("shared", AMOUNT, limit_nano=LIMIT)])
    return s.spent_nano, s.reserved_nano, s.calls, s.concurrent


def test_500_reservations_from_16_threads(store: Store) -> None:
    settled, highest = hammer(store.url, LIMIT, AMOUNT, attempts=500, threads=16, start_at=0)
    assert highest <= LIMIT
    assert settled == 100
    assert _final(store) == (100 * AMOUNT, 0, 100, 0)


def test_500_reservations_from_3_processes(store: Store) -> None:
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 2.0  # let every process start before any reserves
    with ProcessPoolExecutor(max_workers=3, mp_context=ctx) as pool:
        futures = [pool.submit(hammer, store.url, LIMIT, AMOUNT, n, 4, start_at) for n in (167, 167, 166)]
        results = [f.result(timeout=120) for f in futures]
    assert all(highest <= LIMIT for _, highest in results)
    assert sum(settled for settled, _ in results) == 100
    assert _final(store) == (100 * AMOUNT, 0, 100, 0)


def test_concurrent_limit_under_threads(store: Store) -> None:
    c = claim("conc", 1, limit_concurrent=3)
    held: list[str] = []
    refused = [0]
    lock = threading.Lock()

    def work() -> None:
        for _ in range(10):
            res, result = reserve(store, [c])
            with lock:
                if result.ok:
                    held.append(res.id)
                else:
                    refused[0] += 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(held) == 3 and refused[0] == 77
    for rid in held:
        store.release(rid)
    (s,) = store.claim_states([c])
    assert (s.reserved_nano, s.calls, s.concurrent) == (0, 0, 0)


def test_kill_9_loses_no_settled_event(store_url: Callable[[], str]) -> None:
    url = store_url()
    helper = Path(__file__).with_name("ledger_helpers.py")
    paths = [str(Path(__file__).parents[2] / "src"), str(helper.parent)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    n = 40
    proc = subprocess.run([sys.executable, str(helper), "crash", url, str(n)], env=env, timeout=60,
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    store = open_store(url)
    try:
        store.migrate()
        assert store.count_events() == n
        assert store.get_event(f"e-crash-{n - 1}") is not None
        assert store.open_reservations() == 2
        c = claim("crash", 10)
        (before,) = store.claim_states([c])
        got = (before.spent_nano, before.reserved_nano, before.calls, before.concurrent)
        assert got == (7 * n, 20, n + 2, 2)
        assert store.expire_reservations(NOW + timedelta(hours=1)) == 2
        (after,) = store.claim_states([c])
        assert (after.spent_nano, after.reserved_nano, after.calls, after.concurrent) == (7 * n, 0, n, 0)
    finally:
        store.close()


def test_store_usable_again_after_close_and_reopen(store_url: Callable[[], str]) -> None:
    url = store_url()
    first = open_store(url)
    first.migrate()
    res, _ = reserve(first, [claim("x", 5)])
    first.settle(res.id, event(5, rid=res.id))
    first.close()
    second = open_store(url)
    try:
        assert second.count_events() == 1
    finally:
        second.close()
