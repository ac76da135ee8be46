"""The embedded store: one SQLite file in WAL mode.

* Every write is one `BEGIN IMMEDIATE` transaction: it takes the database's
  single write lock up front, so the read-check-write of a reservation can
  never interleave with another writer — thread, process or anything else
  that opens the same file. Threads of one process first queue on an
  in-process lock (cheap), so SQLite's sleeping busy handler only arbitrates
  between processes, up to `busy_timeout` ms; past that the store raises
  `StoreUnavailable`.
* Each thread has its own connection (`threading.local`); reads run in
  autocommit mode and never block writers (WAL).
* WAL checkpoints (copying the log back into the database file, with an
  fsync) run on a background thread of the store every `checkpoint_interval`
  seconds (default 1.0), not inside a request's commit — SQLite's automatic
  checkpoint would otherwise stall every ~1000th write by milliseconds.
  `checkpoint_interval=0` restores SQLite's automatic checkpoints.
* Group commit (`batch()`): a thread may run several writes as savepoints of one
  transaction and commit them together. The gateway does this for the store
  calls its requests make in the same turn of the event loop, so concurrent
  requests share one COMMIT (the write of the WAL pages) instead of paying one
  each; every request still gets its answer only after the COMMIT.
* Durability: `synchronous=NORMAL` (default) — a committed transaction
  survives the process being killed (kill -9) because it is in the WAL;
  only a power loss or OS crash can drop the last commits. Add
  `?synchronous=FULL` to the URL to fsync every commit.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from costplane.ledger import codec
from costplane.ledger.base import Row, SqlStore, Tx
from costplane.ledger.optimizequeries import OptimizeQueries
from costplane.ledger.store import StoreError, StoreUnavailable

__all__ = ["MIN_SQLITE_VERSION", "SqliteStore"]

T = TypeVar("T")
_SYNC_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
#: generated columns (schema v11) need 3.31; window functions 3.25, UPSERT 3.24
MIN_SQLITE_VERSION = (3, 31, 0)


class _SqliteTx(Tx):
    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def exec(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self._conn.execute(sql, params).fetchone()
        return row


class _Batch:
    """One thread's group-commit block (`SqliteStore.batch`)."""

    __slots__ = ("conn", "lost")

    def __init__(self) -> None:
        self.conn: sqlite3.Connection | None = None  # set once the write lock is held and BEGIN IMMEDIATE issued
        self.lost = ""  # why SQLite dropped the transaction mid-block, if it did


class SqliteStore(SqlStore, OptimizeQueries):  # OptimizeQueries: the waste detectors' reads
    """`Store` on one SQLite database file (WAL)."""

    dialect = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "NORMAL",
        busy_timeout_ms: int = 5000,
        checkpoint_interval: float = 1.0,
        url: str | None = None,
    ) -> None:
        if str(path) in ("", ":memory:"):
            raise StoreError("the SQLite store needs a file path (connections share it), not :memory:")
        sync = synchronous.upper()
        if sync not in _SYNC_MODES:
            raise StoreError(f"synchronous must be one of {', '.join(_SYNC_MODES)}, got {synchronous!r}")
        self.path = Path(path)
        self.synchronous = sync
        self.busy_timeout_ms = int(busy_timeout_ms)
        self.url = url or f"sqlite:///{self.path}"
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._closed = False
        self.checkpoint_interval = float(checkpoint_interval)
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None

    # -- connections ------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise StoreError(f"store {self.url} is closed")
        if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            raise StoreUnavailable(
                f"cannot open SQLite database {self.path}: this Python's SQLite library is {sqlite3.sqlite_version};"
                f" costplane needs {'.'.join(map(str, MIN_SQLITE_VERSION))} or newer (generated columns, window"
                " functions, UPSERT)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout_ms / 1000,
                isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
                check_same_thread=False,  # only `close()` touches another thread's connection
                cached_statements=256,
            )
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            if self.checkpoint_interval > 0:
                conn.execute("PRAGMA wal_autocheckpoint = 0")
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"cannot open SQLite database {self.path}: {exc}") from exc
        self._local.conn = conn
        with self._all_lock:
            self._all.append(conn)
            if self.checkpoint_interval > 0 and self._checkpointer is None:
                self._checkpointer = threading.Thread(
                    target=self._checkpoint_loop, name=f"costplane-checkpoint {self.path.name}", daemon=True
                )
                self._checkpointer.start()
        return conn

    def _checkpoint_loop(self) -> None:
        """Copy the WAL into the database file off the request path (PASSIVE: never blocks writers)."""
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None,
                                   check_same_thread=False)  # fmt: skip
        except sqlite3.Error:  # pragma: no cover - the writers' connection opened fine
            return
        try:
            while not self._stop.wait(self.checkpoint_interval):
                with contextlib.suppress(sqlite3.Error):  # busy: another process checkpoints
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    def close(self) -> None:
        self._closed = True
        self._stop.set()
        if self._checkpointer is not None and self._checkpointer is not threading.current_thread():
            self._checkpointer.join(timeout=5)
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    # -- transactions -------------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group commit: the writes this thread makes inside the block share ONE transaction, each
        in a savepoint of its own (a write that fails is undone alone and raises to its caller), and
        the block ends with one COMMIT. The transaction (and the write lock) is taken by the first
        write, so a block of reads takes no lock. Nothing written in the block is durable until the
        block has ended without an error: a failed COMMIT raises `StoreUnavailable` out of the
        block, and a write that finds the transaction already lost raises it too."""
        if getattr(self._local, "batch", None) is not None:
            yield  # nested: the outer block commits
            return
        state = _Batch()
        self._local.batch = state
        try:
            yield
        finally:
            self._local.batch = None
            if state.conn is not None:
                self._end_batch(state, state.conn)

    def _end_batch(self, state: _Batch, conn: sqlite3.Connection) -> None:
        try:
            if state.lost:
                raise StoreUnavailable(f"SQLite database {self.path}: a batched transaction was lost ({state.lost})")
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"SQLite database {self.path}: COMMIT failed ({exc})") from exc
        finally:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            self._write_lock.release()

    def _temp_store(self, conn: sqlite3.Connection, memory: bool) -> None:
        """Statement journals (and temp tables, sorts) in memory or SQLite's default, between
        transactions. Every event INSERT needs a statement journal (the rollup trigger makes it a
        statement that writes several tables), and one call's pages pass the 64 KiB at which
        SQLite spills it to a temp file, which costs tens of microseconds per row. A bounded call
        write therefore keeps it in memory; everything else (scans, sorts, bulk statements, whose
        temp data can be as large as the tables) keeps the default, on disk."""
        if getattr(self._local, "temp_memory", False) != memory:
            self._statement(conn, "PRAGMA temp_store = MEMORY" if memory else "PRAGMA temp_store = DEFAULT")
            self._local.temp_memory = memory

    def _batched_write(self, state: _Batch, body: Callable[[Tx], T], memory: bool = False) -> T:
        if state.lost:
            raise StoreUnavailable(f"SQLite database {self.path}: a batched transaction was lost ({state.lost})")
        conn = state.conn
        if conn is None:
            conn = self._conn()
            self._temp_store(conn, memory)  # the batch's first write decides, before BEGIN
            self._write_lock.acquire()
            try:
                self._statement(conn, "BEGIN IMMEDIATE")
            except StoreError:
                self._write_lock.release()
                raise
            state.conn = conn
        self._statement(conn, "SAVEPOINT costplane_write")
        try:
            result = body(_SqliteTx(conn))
        except BaseException as exc:
            try:
                if not conn.in_transaction:  # SQLite rolled it all back (I/O error, disk full)
                    raise sqlite3.OperationalError("the transaction was rolled back")
                conn.execute("ROLLBACK TO costplane_write")
                conn.execute("RELEASE costplane_write")
            except sqlite3.Error:  # the writes batched before this one cannot be committed
                state.lost = str(exc) or type(exc).__name__
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc) from exc
            raise
        try:
            conn.execute("RELEASE costplane_write")
        except sqlite3.Error as exc:
            state.lost = str(exc)
            raise self._error(exc) from exc
        return result

    def _write(self, body: Callable[[Tx], T]) -> T:
        return self._transaction(body, memory=False)

    def _call_write(self, body: Callable[[Tx], T]) -> T:
        return self._transaction(body, memory=True)

    def _transaction(self, body: Callable[[Tx], T], memory: bool) -> T:
        state: _Batch | None = getattr(self._local, "batch", None)
        if state is not None:
            return self._batched_write(state, body, memory)
        conn = self._conn()
        self._temp_store(conn, memory)
        with self._write_lock:
            self._statement(conn, "BEGIN IMMEDIATE")
            try:
                result = body(_SqliteTx(conn))
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._error(exc) from exc
                raise
            return result

    def _statement(self, conn: sqlite3.Connection, sql: str) -> None:
        """A transaction-control statement; its failure is the store's error (busy: `StoreUnavailable`)."""
        try:
            conn.execute(sql)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _read(self, body: Callable[[Tx], T]) -> T:
        conn = self._conn()
        state: _Batch | None = getattr(self._local, "batch", None)
        if state is None or state.conn is None:  # not inside a transaction a batch has begun
            self._temp_store(conn, False)
        try:
            return body(_SqliteTx(conn))
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    # -- the loop filter's feed (ledger/looppoll.py) ---------------------------------------
    def event_row(self, rowid: int | None = None) -> tuple[int, str] | None:
        """(row id, id) of the cost event at row id `rowid` (None: the newest), None when there is none."""
        sql, params = (("SELECT rowid, id FROM cost_events ORDER BY rowid DESC LIMIT 1", ()) if rowid is None
                       else ("SELECT rowid, id FROM cost_events WHERE rowid = ?", (rowid,)))
        row = self._read(lambda tx: tx.one(sql, params))
        return None if row is None else (int(row[0]), str(row[1]))

    def loop_calls_since(self, since: datetime) -> list[tuple[str, str, datetime]]:
        """(run, request hash, time) of every call with both, at or after `since`."""
        sql = ("SELECT run, request_hash, ts FROM cost_events"
               " WHERE ts >= ? AND run IS NOT NULL AND request_hash IS NOT NULL")
        rows = self._read(lambda tx: tx.all(sql, (codec.to_us(since),)))
        return [(str(run), str(request_hash), codec.from_us(int(ts))) for run, request_hash, ts in rows]

    def events_from_row(self, rowid: int, limit: int) -> list[tuple[int, str | None, str | None, str | None, int]]:
        """(row id, id, run, request hash, time in µs) of the cost events from row id `rowid` on, in row
        id order, at most `limit`; the id only of the row `rowid` itself (None for the others)."""
        sql = ("SELECT rowid, CASE WHEN rowid = ? THEN id END, run, request_hash, ts FROM cost_events"
               " WHERE rowid >= ? ORDER BY rowid LIMIT ?")
        return self._read(lambda tx: tx.all(sql, (rowid, rowid, limit)))

    def _table_exists(self, tx: Tx, table: str) -> bool:
        return tx.one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)) is not None

    def _error(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and (
            "locked" in text or "busy" in text or "unable to open" in text or "disk I/O" in text
        ):
            return StoreUnavailable(
                f"SQLite database {self.path} unavailable ({text}); busy_timeout={self.busy_timeout_ms} ms"
            )
        if isinstance(exc, sqlite3.IntegrityError):
            return StoreError(f"SQLite constraint violated in {self.path}: {text}")
        return StoreError(f"SQLite error in {self.path}: {text}")
