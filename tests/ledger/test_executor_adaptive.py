"""StoreExecutor on a networked store: calls that do not wait run inline under load too; calls that
wait (round trips, lock waits) go to the worker threads, with one every PROBE_SECONDS still run inline
to measure again, so the executor comes back inline once the calls stop waiting."""

from __future__ import annotations

import asyncio
import threading
import time

from costplane.ledger.executor import INLINE_WAIT_SECONDS, StoreExecutor
from costplane.ledger.postgres import PostgresStore

LOOP = threading.main_thread().name


def _where() -> str:
    return threading.current_thread().name


def _waits() -> str:
    time.sleep(0.002)  # a round trip: wall time, no CPU
    return threading.current_thread().name


def test_calls_go_where_their_measured_wait_says() -> None:
    # a networked store (never connected: the calls here are the test's own), so calls are measured
    executor = StoreExecutor(PostgresStore("postgresql://127.0.0.1:1/unused"), workers=2, probe_seconds=0.02)

    async def busy(fn: object, n: int) -> list[str]:
        with executor.request(), executor.request():  # two requests in progress: "under load"
            return [await executor.run(fn) for _ in range(n)]  # type: ignore[arg-type]

    try:
        quick = asyncio.run(busy(_where, 50))
        assert quick == [LOOP] * 50  # nothing waits: inline, no thread hop
        assert executor.waited < INLINE_WAIT_SECONDS

        slow = asyncio.run(busy(_waits, 100))  # ≥ 2 ms each: 0.2 s in all, about ten probe periods
        assert executor.waited > INLINE_WAIT_SECONDS
        late = slow[20:]  # the first few ran inline until the average passed the bound
        assert late.count(LOOP) < len(late) // 2  # on the threads, but for the probes
        assert any(name.startswith("costplane-store-") for name in late)
        assert late.count(LOOP) >= 2  # one call per probe period still measured inline

        back: list[str] = []
        for _ in range(100):  # the calls stop waiting: the probes bring them back inline
            back += asyncio.run(busy(_where, 10))
            if back[-10:] == [LOOP] * 10:
                break
            time.sleep(0.02)  # a probe period
        assert back[-10:] == [LOOP] * 10
        assert executor.waited < INLINE_WAIT_SECONDS

        async def alone() -> list[str]:
            with executor.request():
                return [await executor.run(_waits) for _ in range(5)]

        assert asyncio.run(alone()) == [LOOP] * 5  # a request alone: inline whatever the calls wait
    finally:
        executor.close()
