"""Store work off the event loop, with group commit where the store supports it.

The gateway awaits `StoreExecutor.run(fn, *args)`; `fn` (e.g. the decision
core's admit or settle) runs on a store thread. On a store with
`run_grouped` (SQLite), ONE writer thread takes everything queued at that
moment and runs it in one transaction — a savepoint per call — with a single
COMMIT, so N concurrent requests cost one commit instead of N. Other stores
(PostgreSQL) get several worker threads, each with its own connection, so
round trips overlap instead of blocking the event loop.

When a caller is alone (no other request in progress, nothing queued), `run`
calls `fn` inline on the event loop: a thread hop costs more than it saves
for a lone request, and batching needs company. Under load the calls go to
the store thread(s) and group there. Callers say how busy they are with
`with executor.request(): ...`.

A result is handed back only after its transaction committed: a client never
sees an answer whose cost event could still be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from costplane.ledger.store import Store

__all__ = ["StoreExecutor"]

T = TypeVar("T")
MAX_GROUP = 128
log = logging.getLogger("costplane.store")


@runtime_checkable
class GroupCommit(Protocol):
    def run_grouped(self, calls: Sequence[Callable[[], Any]]) -> list[tuple[bool, Any]]: ...


_Job = tuple[Callable[[], Any], asyncio.AbstractEventLoop | None, "asyncio.Future[Any] | None"]


class StoreExecutor:
    def __init__(self, store: Store, workers: int = 8) -> None:
        self._grouper: GroupCommit | None = store if isinstance(store, GroupCommit) else None
        self._count = 1 if self._grouper is not None else max(1, workers)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        # both touched only on the event loop thread:
        self._requests = 0  # requests in progress (callers' `request()` scopes)
        self._queued_calls = 0  # `run` calls waiting for a store thread

    @property
    def grouped(self) -> bool:
        return self._grouper is not None

    def _start(self) -> None:
        with self._lock:
            if self._threads:
                return
            for index in range(self._count):
                thread = threading.Thread(target=self._work, name=f"costplane-store-{index}", daemon=True)
                thread.start()
                self._threads.append(thread)

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Mark one request in progress for the duration of the block."""
        self._requests += 1
        try:
            yield
        finally:
            self._requests -= 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(*args) — inline when the caller is alone, else on a store thread — and return its result."""
        if self._requests <= 1 and self._queued_calls == 0:
            return fn(*args)
        if not self._threads:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queued_calls += 1
        try:
            self._queue.put((lambda: fn(*args), loop, future))
            return await future
        finally:
            self._queued_calls -= 1

    def submit(self, fn: Callable[..., object], *args: Any) -> None:
        """Run fn(*args) on a store thread without waiting (e.g. settling after a client left)."""
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

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            if self._grouper is not None:
                while len(jobs) < MAX_GROUP:
                    try:
                        job = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        self._queue.put(None)  # keep the stop signal for the loop above
                        break
                    jobs.append(job)
            answers: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], tuple[bool, Any]]]] = {}
            for (_, loop, future), outcome in zip(jobs, self._execute([j[0] for j in jobs]), strict=True):
                if loop is not None and future is not None:
                    answers.setdefault(loop, []).append((future, outcome))
                elif not outcome[0]:
                    log.error("background store job failed: %s", outcome[1])
            for loop, pairs in answers.items():  # one wake-up of each event loop per group, not per call
                loop.call_soon_threadsafe(_resolve_all, pairs)

    def _execute(self, calls: list[Callable[[], Any]]) -> list[tuple[bool, Any]]:
        if self._grouper is not None:
            return self._grouper.run_grouped(calls)
        outcomes: list[tuple[bool, Any]] = []
        for call in calls:
            try:
                outcomes.append((True, call()))
            except Exception as exc:
                outcomes.append((False, exc))
        return outcomes


def _resolve_all(pairs: list[tuple[asyncio.Future[Any], tuple[bool, Any]]]) -> None:
    for future, (ok, value) in pairs:
        if future.done():  # the awaiting request was cancelled
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
