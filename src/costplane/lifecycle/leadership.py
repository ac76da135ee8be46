"""Which replica runs the environment scheduler: exactly one per store.

* PostgreSQL: a session advisory lock, keyed by the store's schema. A replica that does not get it
  keeps its one connection and waits on the lock there, on a thread of its own (`pg_advisory_lock`
  blocks in the server), so it takes over the moment the leader's session ends — a leader that
  stopped, crashed or lost its connection — without polling: a follower runs no statement while
  it waits, and opens no connection per attempt.
* SQLite: an exclusive `flock` on a file next to the database, tried without blocking (released by
  the operating system when the holder dies).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import threading
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["Leadership"]

log = logging.getLogger("costplane.scheduler")


class Leadership:
    """Exactly one scheduler acts per store. `acquire()` never blocks: it says whether this replica
    leads now (and, on PostgreSQL, starts waiting for the lock when another replica holds it)."""

    def __init__(self, store_url: str) -> None:
        self.url = store_url
        self._file: TextIO | None = None
        self._conn: Any = None
        self._held = threading.Event()
        self._waiter: threading.Thread | None = None
        self._stopping = threading.Event()
        self.connections = 0  # connections opened for the lock (one per wait, not one per attempt)

    @property
    def held(self) -> bool:
        return self._file is not None or (self._held.is_set() and self._conn is not None and not self._conn.closed)

    def acquire(self) -> bool:
        if self.held:
            return True
        if self.url.startswith("sqlite"):
            return self._flock()
        if self._waiter is not None and self._waiter.is_alive():
            return False  # waiting on the lock: the waiter takes it when the leader goes
        self._held.clear()
        return self._try_lock()

    def _flock(self) -> bool:
        path = Path(urlsplit(self.url).path.lstrip("/") if "///" not in self.url else self.url.split("///", 1)[1])
        path = Path(str(path).split("?", 1)[0])
        handle = open(f"{path}.scheduler.lock", "a")  # noqa: SIM115 - held for the process's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def _lock_key(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = dict(query).get("schema", "public")
        conninfo = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query
                                                              if k not in ("schema", "lock_timeout")])))
        key = int.from_bytes(hashlib.sha256(f"costplane-scheduler:{schema}".encode()).digest()[:8], "big",
                             signed=True)
        return conninfo, key

    def _try_lock(self) -> bool:
        import psycopg

        conninfo, key = self._lock_key()
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=5,
                                             application_name="costplane-scheduler-lock")
                self.connections += 1
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        except psycopg.Error as exc:
            log.warning("scheduler leader lock unavailable: %s", exc)
            self._drop()
            return False
        if row and row[0]:
            self._held.set()
            return True
        if not self._stopping.is_set():
            self._waiter = threading.Thread(target=self._wait, args=(self._conn, key), daemon=True,
                                            name="costplane-leader-wait")
            self._waiter.start()
        return False

    def _wait(self, conn: Any, key: int) -> None:
        """Block on the lock in the server until the leader's session ends (or `release` cancels)."""
        import psycopg

        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        except psycopg.Error as exc:
            if not self._stopping.is_set():
                log.warning("waiting for the scheduler leader lock failed (retried at the next tick): %s", exc)
            with contextlib.suppress(Exception):
                conn.close()
            return
        if self._stopping.is_set():  # released while the lock came: give it up with the connection
            with contextlib.suppress(Exception):
                conn.close()
            return
        self._held.set()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None
        self._held.clear()

    def release(self) -> None:
        self._stopping.set()
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        waiter, conn = self._waiter, self._conn
        if waiter is not None and waiter.is_alive() and conn is not None:
            with contextlib.suppress(Exception):
                conn.cancel_safe(timeout=2.0)
            waiter.join(timeout=5)
        self._drop()
