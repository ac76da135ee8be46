"""Schema step 18 and the loop filter's feed on PostgreSQL: every process learns of every call.

The loop filter (ledger/loopfilter.py) may only answer "no call of this run and request in the
window" if it has seen every call that any process committed. On PostgreSQL the store tells it:

* **Schema v18** adds a row trigger on `cost_events` that, for a row with a run and a request
  hash, sends `pg_notify('costplane_loop.<16 hex digits of md5(schema)>', '<request hash> <ts µs>
  <run>')` (a channel name has at most 63 bytes; a schema name may have as many). A
  notification is delivered when, and only if, its transaction commits, to every session
  listening on the channel — whichever writer inserted the row: the lease writer's batches, the
  settle functions, OTLP and SDK ingest, a process of an older version. SQLite has no such feed
  (and its count is a cheap in-process read): the step records the version and changes nothing.
* **`LoopFeed`** keeps one connection per serving process listening on that channel, in a daemon
  thread, started at the process's first loop count (a CLI command never counts, so never
  listens). It LISTENs first, then reads the calls of the window so far (so a call committed
  between the two is seen twice, never missed), and only then is `ready`. A lost connection makes
  it not ready until it has listened and read the window again: a notification sent while no one
  listened is never trusted to have arrived.

Notifications cost the writer one queue entry per row and a short cluster-wide lock at commit
(PostgreSQL serialises the commits of transactions that notify). The lease writer commits a batch
of rows at a time, so with leases on that lock is taken tens of times a second, not once a call.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from costplane.ledger import codec
from costplane.ledger.feedthread import FeedThread
from costplane.ledger.loopfilter import LoopFilter

if TYPE_CHECKING:  # the PostgreSQL driver is only imported with the store
    from costplane.ledger.postgres import PostgresStore

__all__ = ["APPLICATION_NAME", "CHANNEL", "LOOP_FEED_VERSION", "V18_DIALECT", "LoopFeed"]

log = logging.getLogger("costplane.store")

LOOP_FEED_VERSION = 18
APPLICATION_NAME = "costplane-loop-feed"  # the feed's session in pg_stat_activity
CHANNEL = "costplane_loop"  # + "." + the first 16 hex digits of the md5 of the tables' schema

V18_DIALECT: dict[str, tuple[str, ...]] = {
    "postgres": (
        """CREATE OR REPLACE FUNCTION costplane_loop_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('costplane_loop.' || left(md5(TG_TABLE_SCHEMA), 16),
                      NEW.request_hash || ' ' || NEW.ts || ' ' || NEW.run);
    RETURN NULL;
END $$""",
        """CREATE TRIGGER cost_events_loop_notify AFTER INSERT ON cost_events FOR EACH ROW
    WHEN (NEW.run IS NOT NULL AND NEW.request_hash IS NOT NULL) EXECUTE FUNCTION costplane_loop_notify()""",
    ),
}

_WAIT_SECONDS = 0.25  # one wait for notifications (how soon the thread sees `close`)
_CATCH_UP = ("SELECT request_hash, ts, run FROM cost_events"
             " WHERE ts >= %s AND run IS NOT NULL AND request_hash IS NOT NULL")


def parse_payload(payload: str) -> tuple[str, datetime, str] | None:
    """(request hash, time, run) of a notification, or None when it is not one of ours."""
    parts = payload.split(" ", 2)
    if len(parts) != 3 or not parts[1].lstrip("-").isdigit():
        return None
    return parts[0], codec.from_us(int(parts[1])), parts[2]


class LoopFeed(FeedThread):
    """A `LoopFilter` fed with every call committed to a PostgreSQL store (see the module doc)."""

    def __init__(self, store: PostgresStore, loops: LoopFilter, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), retry_seconds: float = 1.0) -> None:
        super().__init__(loops)
        self.store = store
        self._clock = clock
        self._retry = retry_seconds
        self._conn: Any = None
        self._failing = False  # an outage was reported and is not over
        self.catch_ups = 0  # window reads (one per connection)

    @property
    def backend_pid(self) -> int | None:
        """The server process of the feed's session (None while disconnected)."""
        conn = self._conn
        return None if conn is None else int(conn.info.backend_pid)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:
                if self._stop.is_set():
                    break
                if not self._failing:  # one warning per outage (and a note when it is over)
                    log.warning("loop feed lost its connection (%s); the loop guard reads the store until it is "
                                "back", exc)
                self._failing = True
            finally:
                self._ready.clear()
                conn, self._conn = self._conn, None
                if conn is not None:
                    with contextlib.suppress(Exception):  # already broken
                        conn.close()
            self._stop.wait(self._retry)

    def _listen(self) -> None:
        conn = self._conn = self.store.connect(APPLICATION_NAME)
        row = conn.execute("SELECT current_schema()").fetchone()
        digest = hashlib.md5(str(row[0] if row else "").encode(), usedforsecurity=False).hexdigest()[:16]
        conn.execute(f'LISTEN "{CHANNEL}.{digest}"')
        since = self._clock() - timedelta(seconds=self.filter.window)
        with conn.cursor() as cur:
            for request_hash, ts, run in cur.stream(_CATCH_UP, (codec.to_us(since),)):
                self.filter.add(str(run), str(request_hash), codec.from_us(int(ts)))
        self.catch_ups += 1
        self._ready.set()
        if self._failing:
            self._failing = False
            log.warning("loop feed listening again; the loop guard's filter is caught up")
        pruned = time.monotonic()
        while not self._stop.is_set():
            for note in conn.notifies(timeout=_WAIT_SECONDS):
                parsed = parse_payload(note.payload)
                if parsed is not None:
                    self.filter.add(parsed[2], parsed[0], parsed[1])
                if self._stop.is_set():
                    return
            if time.monotonic() - pruned > self.filter.width:
                self.filter.prune(self._clock())
                pruned = time.monotonic()
