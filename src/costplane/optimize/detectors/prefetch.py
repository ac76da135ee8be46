"""Overlap the store's heaviest independent reads with the detectors' other work, on a second thread.

The grouped queries of the run detectors (per agent: one pass over its runs, then the repeats of the
agents whose runs repeat themselves), the embedding rows and the cacheable requests do not depend on
anything the detectors before them compute, and the database does their work with the GIL released
(SQLite while stepping, psycopg while waiting on the server). So `prefetch` hands them to one worker
thread per store, last-needed first, while the first detectors read the model groups (and the
cacheable requests, unless the worker got there first); a detector that needs one of them before it
is done waits for it (`StoreSource._once`). The results are the same queries' results: only their
timing changes.

One worker per store, kept for the store's lifetime: its thread has one connection of the store's
(SQLite and PostgreSQL open one per thread), so repeated runs do not open more.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from costplane.optimize.detectors import amplification, cache, chatter, embeddings
from costplane.optimize.detectors.source import Source
from costplane.optimize.detectors.store_source import StoreSource

__all__ = ["prefetch"]

_WORKERS: dict[int, ThreadPoolExecutor] = {}  # id(store) -> its worker, dropped when the store is collected
_LOCK = threading.Lock()


def _worker(store: Any) -> ThreadPoolExecutor:
    with _LOCK:
        worker = _WORKERS.get(id(store))
        if worker is None:
            worker = _WORKERS[id(store)] = ThreadPoolExecutor(1, thread_name_prefix="costplane-prefetch")
            weakref.finalize(store, _drop, id(store))
        return worker


def _drop(key: int) -> None:
    with _LOCK:
        worker = _WORKERS.pop(key, None)
    if worker is not None:
        worker.shutdown(wait=False)


def _run(jobs: list[Callable[[], object]]) -> None:
    for job in jobs:
        try:
            job()
        except Exception:  # kept in the source's memo: the detector that asks for it re-raises it
            continue


def prefetch(source: Source, names: Collection[str]) -> None:
    """Start the independent reads of the detectors `names` on the store's worker (store sources only)."""
    if not isinstance(source, StoreSource):
        return
    # the reverse of the order the detectors ask (`DETECTORS`): the main thread starts from the front
    # (model groups, cacheable requests), the worker from the back, and they meet in the middle
    jobs: list[Callable[[], object]] = []
    if embeddings.NAME in names:
        jobs.append(source.read_embedding_rows_ahead)
    if chatter.NAME in names:
        jobs.append(lambda: [source.loop_summary(agent) for agent in source.run_agents()])
    if amplification.NAME in names or chatter.NAME in names:
        jobs.append(lambda: [source.run_summary(agent) for agent in source.run_agents()])
    if cache.NAME in names:
        jobs.append(source.read_cache_rows_ahead)
    if jobs:
        _worker(source.store).submit(_run, jobs)
