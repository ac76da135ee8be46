"""Where the decision core's store work runs, so the event loop is blocked as little as possible.

The gateway awaits `StoreExecutor.run(fn, *args)` for every store-touching step
(admit, settle, release, cache). What is fastest depends on the store — measured
with benchmarks/bench_gateway.py (docs/performance.md):

* **In-process store (SQLite):** `fn` runs on the event loop thread. A call
  takes tens to hundreds of microseconds of CPU. Handing it to a thread costs
  more than it saves: under the GIL the hand-offs make latency at moderate load
  4–10× worse (a convoy); group commit on a writer thread gained 10–30 % at
  saturation but lost that latency. So the calls stay on the loop, with group
  commit there: a request that is alone runs its call at once; when several are
  in progress, the calls made in one turn of the loop are run together at the
  end of it in one `SqliteStore.batch()` — each in its own savepoint, all under
  one COMMIT, which is most of a settlement's cost — and each caller resumes
  after that COMMIT — and after the one `write` of the lease journal's records
  of the batch (`grouped`): concurrent settlements share that system call as
  they share the COMMIT. Nothing waits for a timer: a batch is whatever
  arrived while the loop was busy.
* **Networked store (PostgreSQL):** a call may wait on the network (a round trip of
  0.1–2 ms) or on another process's row lock. Inline, that wait blocks every other request;
  on a worker thread it does not, but the hand-off costs about 0.3–0.4 ms of CPU a call under
  the GIL (measured: docs/performance.md). Which is cheaper depends on what the calls do,
  so the executor measures it, as the **expected wait of a call**: how often a call runs a
  store transaction at all (a moving average over every call, inline or not, weight 1/64:
  the store counts each thread's transactions) times what such a call waited when it ran
  inline (wall time minus the thread's CPU time; a moving average, weight 1/8). An admission
  from leases or a settlement into the journal runs none, so with leases a busy process's
  calls — of which a few a second read the credential generation or carve a lease — expect a
  wait of microseconds and stay inline; with every call reserving in the store, they expect
  the whole round trip. While the expected wait stays under `INLINE_WAIT_SECONDS` (0.25 ms)
  calls run inline even under load; above it calls made under load go to the worker threads,
  each with its own connection, and one call every `PROBE_SECONDS` (0.25 s) still runs inline
  to measure its wait again, so the executor returns to inline calls once they no longer wait
  (a probe that waits blocks the loop: four a second keep that near 1 % of its time even at
  2.5 ms a wait). A request that is alone always runs its calls inline: a thread hop would
  only add to its latency. Callers say how busy they are with `with executor.request(): ...`.
  A store without per-thread counts has every inline call's wait counted as before.

Either way a result is handed back only after its transaction committed: a
client never sees an answer whose cost event could still be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from costplane.ledger.sqlite import SqliteStore
from costplane.ledger.store import Store, StoreError

__all__ = ["INLINE_WAIT_SECONDS", "PROBE_SECONDS", "StoreExecutor"]

#: a networked store's calls run inline, under load too, while the moving average of what an inline
#: call waited (wall minus CPU time) stays below this; above it they go to the worker threads
INLINE_WAIT_SECONDS = 0.00025
#: with calls on the worker threads, one call this often still runs inline, to measure its wait
PROBE_SECONDS = 0.25
_WEIGHT = 0.125  # of the latest waiting inline call in the moving average of its wait
_SHARE_WEIGHT = 1 / 64  # of the latest call in the moving average of calls that ran a transaction

T = TypeVar("T")
log = logging.getLogger("costplane.store")

_Job = tuple[Callable[[], Any], asyncio.AbstractEventLoop | None, "asyncio.Future[Any] | None"]


class StoreExecutor:
    def __init__(self, store: Store, workers: int = 8, *, inline_wait: float = INLINE_WAIT_SECONDS,
                 probe_seconds: float = PROBE_SECONDS,
                 grouped: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext) -> None:
        """`grouped`: the block a batch of calls runs in so that their journal writes are one
        (`ledger.open.grouped_writes`); its end precedes every answer of the batch."""
        self._always_inline = isinstance(store, SqliteStore)
        self._inline_wait = inline_wait
        self._probe_seconds = probe_seconds
        self._tx_wait = 0.0  # moving average of what an inline call that ran a transaction waited, s
        self._share = 0.0  # moving average of the calls that ran a transaction (0..1; loop thread only)
        self._probed = 0.0  # when the last inline call ran (monotonic)
        self._batch = store.batch if isinstance(store, SqliteStore) else None
        self._grouped = grouped
        self._pending: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []  # the loop's batch
        self._workers = max(1, workers)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        here = getattr(store, "thread_transactions", None)  # a networked store's count on this thread
        self._here: Callable[[], int] | None = here if callable(here) else None
        # both touched only on the event loop thread:
        self._requests = 0  # requests in progress (callers' `request()` scopes)
        self._queued_calls = 0  # `run` calls waiting for a store thread

    @property
    def inline(self) -> bool:
        """True when every call runs inline (an in-process store)."""
        return self._always_inline

    @property
    def waited(self) -> float:
        """The expected wait of a call of a networked store, in seconds: the share of calls that run
        a store transaction times what such a call waited inline (see the module doc)."""
        return self._tx_wait if self._here is None else self._share * self._tx_wait

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Mark one request in progress for the duration of the block."""
        self._requests += 1
        try:
            yield
        finally:
            self._requests -= 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(*args), inline or on a store thread (see the module doc), and return its result."""
        if self._batch is not None and (self._requests > 1 or self._pending):
            return await self._batched(lambda: fn(*args))
        if self._always_inline:
            return fn(*args)
        if (self._requests <= 1 and self._queued_calls == 0) or self.waited < self._inline_wait:
            return self._timed(fn, *args)
        if time.monotonic() - self._probed >= self._probe_seconds:
            return self._timed(fn, *args)
        if not self._threads:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[T, bool]] = loop.create_future()
        self._queued_calls += 1
        try:
            self._queue.put((lambda: self._counted(fn, *args), loop, future))
            result, ran = await future
        finally:
            self._queued_calls -= 1
        self._share += (float(ran) - self._share) * _SHARE_WEIGHT
        return result

    def _counted(self, fn: Callable[..., T], *args: Any) -> tuple[T, bool]:
        """fn(*args) on a worker thread, and whether it ran a store transaction."""
        before = self._here() if self._here is not None else 0
        result = fn(*args)
        return result, self._here is not None and self._here() != before

    def _timed(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) inline; whether it ran a store transaction goes into the share of such calls,
        and if it did, its wait (wall minus this thread's CPU time) into their moving average."""
        before = self._here() if self._here is not None else 0
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return fn(*args)
        finally:
            waited = max(0.0, (time.perf_counter() - wall) - (time.thread_time() - cpu))
            ran = self._here is None or self._here() != before
            self._share += (float(ran) - self._share) * _SHARE_WEIGHT
            if ran:
                self._tx_wait += (waited - self._tx_wait) * _WEIGHT
            self._probed = time.monotonic()

    async def _batched(self, call: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((call, future))
        return await future

    def _flush(self) -> None:
        """Run the loop's batch in one transaction; answer each caller once it has committed."""
        assert self._batch is not None
        pending, self._pending = self._pending, []
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self._grouped(), self._batch():  # the journal's lines are written after the COMMIT
                for call, _ in pending:
                    try:
                        outcomes.append((True, call()))
                    except Exception as exc:
                        outcomes.append((False, exc))
        except StoreError as exc:  # the COMMIT failed: none of the batch's writes is durable
            outcomes = [outcome if not outcome[0] else (False, exc) for outcome in outcomes]
            outcomes += [(False, exc)] * (len(pending) - len(outcomes))
        except OSError as exc:  # the journal could not be written: answer none of the batch as done
            failed = StoreError(f"the settlement journal could not be written: {exc}")
            outcomes = [(False, failed)] * len(pending)
        for (_, future), outcome in zip(pending, outcomes, strict=True):
            _resolve(future, outcome)

    def submit(self, fn: Callable[..., object], *args: Any) -> None:
        """Run fn(*args) without waiting for it, e.g. to settle after a client went away."""
        if self._always_inline:
            try:
                fn(*args)
            except Exception as exc:
                log.error("store job failed: %s", exc)
            return
        if not self._threads:
            self._start()
        self._queue.put((lambda: fn(*args), None, None))

    def close(self, timeout: float = 10.0) -> None:
        """Finish what is queued, then stop the threads."""
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join(timeout)

    def _start(self) -> None:
        with self._lock:
            if self._threads:
                return
            for index in range(self._workers):
                thread = threading.Thread(target=self._work, name=f"costplane-store-{index}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            call, loop, future = job
            try:
                outcome: tuple[bool, Any] = (True, call())
            except Exception as exc:
                outcome = (False, exc)
            if loop is not None and future is not None:
                loop.call_soon_threadsafe(_resolve, future, outcome)
            elif not outcome[0]:
                log.error("background store job failed: %s", outcome[1])


def _resolve(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():  # the awaiting request was cancelled
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
