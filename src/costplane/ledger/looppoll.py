"""The loop filter's feed on SQLite: every process's calls, read from the table's tail.

The loop filter (ledger/loopfilter.py) may only answer "no call of this run and request in the
window" if it has seen every call that any process committed. SQLite has no notifications, but a
cost event's row id only grows: a new row gets a larger id than every row before it (the table has
no AUTOINCREMENT, so the one exception is a row inserted after the table's newest rows were
deleted, which reuses their ids — detected below). So one thread per serving process reads the
tail of `cost_events` every `poll_seconds` (default 50 ms):

* at start it notes the newest row id, then reads the calls of the window so far (a call committed
  between the two is seen twice, never missed), and only then is `ready`;
* each poll reads the rows from the last one it saw on (`rowid >= last`, by the primary key): that
  first row must still be the one it saw, with the same id — if it is gone or another (the tail
  was deleted and its ids reused) the feed reads the whole window again before it is ready again;
* a failed read makes it not ready until a read of the window succeeds.

A call another process committed reaches the filter at most one poll later; this process's own
calls reach it at once (`LoopIndexedLedger` adds them when they are settled). So a loop spread over
several processes is seen at most 50 ms late, as on PostgreSQL a notification in flight is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from costplane.ledger.feedthread import FeedThread
from costplane.ledger.loopfilter import LoopFilter

if TYPE_CHECKING:
    from costplane.ledger.sqlite import SqliteStore

__all__ = ["PollingLoopFeed"]

log = logging.getLogger("costplane.store")


class PollingLoopFeed(FeedThread):
    """A `LoopFilter` fed with every call committed to a SQLite store (see the module doc)."""

    PAGE = 5000  # rows read per statement

    def __init__(self, store: SqliteStore, loops: LoopFilter, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), poll_seconds: float = 0.05,
                 retry_seconds: float = 1.0) -> None:
        super().__init__(loops)
        self.store = store
        self._clock = clock
        self._poll = poll_seconds
        self._retry = retry_seconds
        self._last: tuple[int, str] | None = None  # (rowid, id) of the newest row read
        self._failing = False
        self.catch_ups = 0  # window reads (at start, after a failure, after the tail was deleted)
        self.polls = 0
        self._pruned = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._ready.is_set():
                    self.catch_up()
                elif not self.poll():
                    continue  # the tail was deleted: read the window again, now
            except Exception as exc:
                self._ready.clear()
                if not self._failing:  # one warning per outage
                    log.warning("loop feed cannot read the store (%s); the loop guard reads the store until it "
                                "can", exc)
                self._failing = True
                self._stop.wait(self._retry)
                continue
            if self._failing:
                self._failing = False
                log.warning("loop feed reading again; the loop guard's filter is caught up")
            self._stop.wait(self._poll)

    def catch_up(self) -> None:
        """Read the window of calls so far (after noting the newest row), then be ready."""
        newest = self.store.event_row()
        for run, request_hash, ts in self.store.loop_calls_since(self._clock() - timedelta(seconds=self.filter.window)):
            self.filter.add(run, request_hash, ts)
        self._last = newest
        self.catch_ups += 1
        self._ready.set()

    def poll(self) -> bool:
        """Read the rows after the newest one read; False (and not ready) when that row is no longer
        there as it was: the window must be read again (`catch_up`)."""
        self.polls += 1
        if time.monotonic() - self._pruned > self.filter.width:
            self.filter.prune(self._clock())
            self._pruned = time.monotonic()
        while True:
            last = self._last
            rows = self.store.events_from_row(0 if last is None else last[0], self.PAGE)
            if last is not None and (not rows or (rows[0][0], rows[0][1]) != last):
                self._ready.clear()
                return False
            fresh = rows[1:] if last is not None else rows
            add = self.filter.add_at
            for _, _, run, request_hash, ts in fresh:
                if run is not None and request_hash is not None:
                    add(run, request_hash, ts / 1e6)
            if fresh:
                self._last = self.store.event_row(fresh[-1][0])
                if self._last is None:  # deleted since: read the window again
                    self._ready.clear()
                    return False
            if len(rows) < self.PAGE:
                return True
