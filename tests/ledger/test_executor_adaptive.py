"""StoreExecutor on a networked store: calls that do not wait run inline under load too; calls that
wait for the store (round trips, lock waits) go to the worker threads, with one every PROBE_SECONDS
still run inline to measure again, so the executor comes back inline once the calls stop waiting. A
call that ran no store transaction never counts as waiting, however long the machine delayed it."""

from __future__ import annotations

import asyncio
import threading
import time

from costplane.ledger.executor import INLINE_WAIT_SECONDS, StoreExecutor
from costplane.ledger.postgres import PostgresStore

LOOP = threading.main_thread().name


def _where() -> str:
    return threading.current_thread().name


class Networked(PostgresStore):
    """A networked store (never connected: the calls here are the test's own) counting transactions."""

    counted = 0

    def thread_transactions(self) -> int:
        return self.counted


STORE = Networked("postgresql://127.0.0.1:1/unused")


def _waits() -> str:
    STORE.counted += 1  # a store transaction...
    time.sleep(0.002)  # ...and its round trip: wall time, no CPU
    return threading.current_thread().name


def _delayed() -> str:
    time.sleep(0.002)  # the machine kept the call off the CPU, no store transaction ran
    return threading.current_thread().name


def test_calls_go_where_their_measured_wait_says() -> None:
    executor = StoreExecutor(STORE, workers=2, probe_seconds=0.02)

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


def test_a_call_that_ran_no_store_transaction_never_counts_as_waiting() -> None:
    executor = StoreExecutor(STORE, workers=2, probe_seconds=0.02)

    async def busy(n: int) -> list[str]:
        with executor.request(), executor.request():
            return [await executor.run(_delayed) for _ in range(n)]

    try:
        assert asyncio.run(busy(50)) == [LOOP] * 50  # 2 ms each off the CPU, none of it the store's
        assert executor.waited == 0.0
    finally:
        executor.close()


def test_rare_store_transactions_among_many_calls_keep_the_calls_inline() -> None:
    executor = StoreExecutor(STORE, workers=2, probe_seconds=0.02)

    async def busy(n: int) -> list[str]:
        with executor.request(), executor.request():  # one call in 100 reads the store (a lease top-up,
            # the credential generation), the rest are decided in memory
            return [await executor.run(_waits if i % 100 == 0 else _where) for i in range(n)]

    try:
        assert asyncio.run(busy(1000)) == [LOOP] * 1000  # 2 ms a read, ~20 µs a call expected: inline
        assert executor.waited < INLINE_WAIT_SECONDS
    finally:
        executor.close()
