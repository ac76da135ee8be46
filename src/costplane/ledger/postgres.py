"""The shared store: PostgreSQL (psycopg 3), correct with many processes and replicas.

Transactions run under READ COMMITTED. Every transaction that changes budget
counters first locks one row per (budget, partition) in `budget_locks`,
always in the same global order (budget, partition, compared bytewise — the
same order Python's `sorted` gives and `COLLATE "C"` gives), then reads the
window sums. Because each READ COMMITTED statement takes a fresh snapshot, the
sums read *after* the lock is granted include everything committed by the
previous holder, so check-then-add cannot interleave: no hard window can be
pushed over its limit. A missing lock row is created first (`INSERT … ON
CONFLICT DO NOTHING`, which also waits for a concurrent inserter of that row).
A deadlock — impossible by the ordering, but PostgreSQL is the judge — or a
serialisation failure is retried a few times; a lock wait past `lock_timeout`
or a lost connection raises `StoreUnavailable`.

Since schema version 3 the counter-changing operations — `reserve`,
`settle`, `release`, `record_event` — are PL/pgSQL functions (`pg_functions`)
that run exactly this algorithm server-side: each operation is ONE statement
on an autocommit connection, i.e. one round trip and one implicit
transaction (it was 5–7 round trips: BEGIN, lock, sums, upserts, inserts,
COMMIT). On an older schema (before `migrate()`) or with
`use_functions = False` the same operations run as multi-statement
transactions from `base.SqlStore`; both paths take the same lock rows in the
same order, so replicas of either kind can share a database.

Each thread has its own connection. `schema=` (URL query parameter or
constructor argument) selects the schema via `search_path`; `lock_timeout=`
(ms, default 5000) bounds lock waits.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pgerrors

from costplane.ledger import codec, pg_functions
from costplane.ledger.base import EVENT_CLAIMS_VERSION, Row, SqlStore, Sums, Tx, _state
from costplane.ledger.optimizequeries import OptimizeQueries
from costplane.ledger.store import StoreError, StoreUnavailable
from costplane.ledger.types import (
    BudgetClaim,
    ClaimState,
    CostEvent,
    DecisionRecord,
    Reservation,
    ReservationStatus,
    ReserveResult,
)

__all__ = ["PostgresStore", "redact_url"]

T = TypeVar("T")
_RETRIES = 5
_OWN_PARAMS = ("schema", "lock_timeout")
_MIGRATION_LOCK = 0x636F7374706C616E  # "costplan": one advisory lock id for all schema upgrades

_LOCK_ROWS = (
    'SELECT 1 FROM budget_locks WHERE (budget, "partition") IN (SELECT * FROM unnest(?::text[], ?::text[]))'
    ' ORDER BY budget COLLATE "C", "partition" COLLATE "C" FOR UPDATE'
)
_CREATE_LOCK_ROWS = (
    'INSERT INTO budget_locks (budget, "partition") SELECT * FROM unnest(?::text[], ?::text[])'
    " ON CONFLICT DO NOTHING"
)
_WINDOW_SUMS = (
    "SELECT CAST(COALESCE(SUM(c.spent_nano), 0) AS BIGINT),"
    " CAST(COALESCE(SUM(c.reserved_nano), 0) AS BIGINT),"
    " CAST(COALESCE(SUM(c.calls), 0) AS BIGINT), CAST(COALESCE(SUM(c.concurrent), 0) AS BIGINT)"
    " FROM unnest(?::text[], ?::text[], ?::bigint[]) WITH ORDINALITY AS k(b, p, ws, i)"
    ' LEFT JOIN budget_counters c ON c.budget = k.b AND c."partition" = k.p AND c.bucket >= k.ws'
    " GROUP BY k.i ORDER BY k.i"
)


class _NoFunctions(Exception):
    """The schema predates version 3: the server-side functions are not installed."""


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}:***@{netloc[1]}"))


class _PgTx(Tx):
    __slots__ = ("_cur",)
    _sql: ClassVar[dict[str, str]] = {}  # '?' -> '%s' rewrites, shared (pure function of the text)

    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self._cur = cur

    @classmethod
    def _q(cls, sql: str) -> str:
        out = cls._sql.get(sql)
        if out is None:
            out = cls._sql[sql] = sql.replace("?", "%s")
        return out

    def exec(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cur.execute(self._q(sql), params)
        return self._cur.rowcount

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if len(rows) == 1:
            self._cur.execute(self._q(sql), rows[0])
        elif rows:
            self._cur.executemany(self._q(sql), rows)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._cur.execute(self._q(sql), params)
        return list(self._cur.fetchall())


class PostgresStore(SqlStore, OptimizeQueries):  # OptimizeQueries: the waste detectors' reads
    """`Store` on a PostgreSQL database shared by any number of processes."""

    dialect = "postgres"

    def __init__(self, url: str, *, schema: str | None = None, lock_timeout_ms: int | None = None) -> None:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        own = {k: v for k, v in query if k in _OWN_PARAMS}
        self.url = url
        self.safe_url = redact_url(url)
        self.schema = schema or own.get("schema") or None
        self.lock_timeout_ms = int(lock_timeout_ms or own.get("lock_timeout") or 5000)
        libpq_query = urlencode([(k, v) for k, v in query if k not in _OWN_PARAMS])
        conninfo = urlunsplit(parts._replace(query=libpq_query))
        options = [f"-c lock_timeout={self.lock_timeout_ms}"]
        if self.schema:
            if not self.schema.replace("_", "").isalnum():
                raise StoreError(f"invalid schema name {self.schema!r}")
            options.append(f"-c search_path={self.schema}")
        self._conninfo = conninfo
        self._kwargs: dict[str, Any] = {"options": " ".join(options), "application_name": "costplane"}
        if "connect_timeout" not in dict(query):
            self._kwargs["connect_timeout"] = 5
        self._local = threading.local()
        self._all: list[psycopg.Connection[Any]] = []
        self._all_lock = threading.Lock()
        self._known_locks: set[tuple[str, str]] = set()
        self._closed = False
        self._transactions = 0  # transactions run (lone statements included), for /metrics and benchmarks
        self._count_lock = threading.Lock()
        self._counts = threading.local()  # the same, per thread (`thread_transactions`)
        #: run reserve/settle/release/record_event as one server-side function call each (schema v3);
        #: False: as multi-statement transactions (the pre-v3 path; for comparisons and tests)
        self.use_functions = True

    # -- connections --------------------------------------------------------------------
    def _conn(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed:
            return conn
        conn = self.connect()
        self._local.conn = conn
        with self._all_lock:
            self._all.append(conn)
        return conn

    @property
    def transactions(self) -> int:
        """Transactions this store object has run in this process, a lone statement counting as one
        (each costs one round trip, a multi-statement one more: BEGIN, its statements, COMMIT)."""
        return self._transactions

    def thread_transactions(self) -> int:
        """Transactions this store object has run on the calling thread: whether a call made one."""
        return int(getattr(self._counts, "n", 0))

    def connect(self, application_name: str = "costplane") -> psycopg.Connection[Any]:
        """A new autocommit connection of the store's own (schema, lock timeout), which the caller
        owns and closes: for a session that must outlive a statement, e.g. one that LISTENs."""
        if self._closed:
            raise StoreError(f"store {self.safe_url} is closed")
        try:
            return psycopg.connect(self._conninfo, autocommit=True, **{**self._kwargs,
                                                                       "application_name": application_name})
        except psycopg.Error as exc:
            raise self._unavailable("cannot connect", exc) from exc

    def _cursor(self, conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
        """The thread's one cursor on its connection. Reused, it keeps psycopg's adapters chosen for
        each parameter position of a statement (a new cursor per statement chose them again: ~15 µs
        of a reservation's parameter conversion)."""
        cur: psycopg.Cursor[Any] | None = getattr(self._local, "cur", None)
        if cur is None or cur.closed or cur.connection is not conn:
            cur = self._local.cur = conn.cursor()
        return cur

    def close(self) -> None:
        self._closed = True
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(psycopg.Error):
                conn.close()
        self._local = threading.local()

    # -- transactions ---------------------------------------------------------------------
    def _run(self, body: Callable[[Tx], T], *, single: bool = False) -> T:
        """Run `body` in one transaction, retried on deadlock/serialisation failure.

        `single=True`: `body` sends exactly one statement, which on this autocommit
        connection is a transaction by itself — no BEGIN/COMMIT round trips."""
        with self._count_lock:
            self._transactions += 1
        self._counts.n = getattr(self._counts, "n", 0) + 1
        for attempt in range(_RETRIES):
            conn = self._conn()
            try:
                cur = self._cursor(conn)
                if single:
                    return body(_PgTx(cur))
                with conn.transaction():
                    return body(_PgTx(cur))
            except pgerrors.UndefinedFunction as exc:
                if single:
                    raise _NoFunctions from exc
                raise StoreError(f"PostgreSQL error: {_first_line(exc)}") from exc
            except (pgerrors.DeadlockDetected, pgerrors.SerializationFailure):
                if attempt == _RETRIES - 1:
                    raise self._unavailable("too many lock conflicts", None) from None
            except (pgerrors.LockNotAvailable, pgerrors.QueryCanceled) as exc:
                raise StoreUnavailable(
                    f"PostgreSQL at {self.safe_url}: lock wait exceeded {self.lock_timeout_ms} ms"
                ) from exc
            except psycopg.OperationalError as exc:
                if conn.broken or conn.closed:
                    self._local.conn = None
                raise self._unavailable("unavailable", exc) from exc
            except psycopg.IntegrityError as exc:
                raise StoreError(f"PostgreSQL constraint violated: {_first_line(exc)}") from exc
            except psycopg.Error as exc:
                if conn.broken:
                    self._local.conn = None
                    raise self._unavailable("unavailable", exc) from exc
                raise StoreError(f"PostgreSQL error: {_first_line(exc)}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _unavailable(self, what: str, exc: BaseException | None) -> StoreUnavailable:
        detail = f": {_first_line(exc)}" if exc is not None else ""
        return StoreUnavailable(f"PostgreSQL at {self.safe_url}: {what}{detail}")

    def _write(self, body: Callable[[Tx], T]) -> T:
        return self._run(body)

    def _read(self, body: Callable[[Tx], T]) -> T:
        return self._run(body)

    def _read_row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """One statement on the autocommit connection: no BEGIN/COMMIT round trips (the loop
        detector's count runs on every request of a run)."""
        return self._run(lambda tx: tx.one(sql, params), single=True)

    # -- the hot path: one server-side function call each (schema v3) ----------------------
    def reserve(self, reservation: Reservation, decision: DecisionRecord) -> ReserveResult:
        if not self.use_functions:
            return super().reserve(reservation, decision)
        claims = reservation.claims
        res_row = codec.reservation_to_row(reservation)
        params = (res_row[0], *res_row[2:], *codec.decision_to_row(decision), *_claim_arrays(claims))
        try:
            rows = self._run(lambda tx: tx.all(pg_functions.RESERVE_SQL, params), single=True)
        except _NoFunctions:
            return super().reserve(reservation, decision)
        states: list[ClaimState] = []
        for claim, (_, spent, reserved, calls, concurrent, broken) in zip(claims, rows, strict=False):
            state = _state(claim, (int(spent), int(reserved), int(calls), int(concurrent)))
            if broken is not None:
                return ReserveResult(ok=False, refused=state, refused_limit=str(broken))
            states.append(state)
        if len(states) != len(claims):  # pragma: no cover - the function returns one row per claim
            raise StoreError(f"costplane_reserve returned {len(rows)} rows for {len(claims)} claims")
        return ReserveResult(ok=True, states=tuple(states))

    def settle(self, reservation_id: str, event: CostEvent) -> tuple[ClaimState, ...]:
        if not self.use_functions:
            return super().settle(reservation_id, event)
        if self._schema_at_least(EVENT_CLAIMS_VERSION):  # v15: the event with its call ids, counted once
            sql, params = pg_functions.SETTLE_CALL_SQL, (reservation_id, *codec.event_to_row_with_ids(event))
        else:
            sql, params = pg_functions.SETTLE_SQL, (reservation_id, *codec.event_to_row(event))
        try:
            row = self._run(lambda tx: tx.one(sql, params), single=True)
        except _NoFunctions:
            return super().settle(reservation_id, event)
        assert row is not None
        prior, claims_json, spent, reserved, calls, concurrent = row
        if prior is None:
            raise StoreError(f"unknown reservation {reservation_id!r}")
        claims = codec.claims_from_json(claims_json)
        sums = zip(spent, reserved, calls, concurrent, strict=True)
        return tuple(_state(c, (int(s), int(r), int(n), int(x))) for c, (s, r, n, x) in zip(claims, sums, strict=True))

    def release(self, reservation_id: str, status: str = ReservationStatus.RELEASED) -> bool:
        if not self.use_functions or status not in _CLOSED:  # the base raises the ValueError
            return super().release(reservation_id, status)
        try:
            row = self._run(lambda tx: tx.one(pg_functions.RELEASE_SQL, (reservation_id, status)), single=True)
        except _NoFunctions:
            return super().release(reservation_id, status)
        return bool(row and row[0])

    def record_event(self, event: CostEvent, claims: Sequence[BudgetClaim] = ()) -> bool:
        if not self.use_functions:
            return super().record_event(event, claims)
        arrays = (pg_array([c.budget for c in claims]), pg_array([c.partition for c in claims]),
                  pg_array([c.bucket for c in claims]))
        if self._schema_at_least(EVENT_CLAIMS_VERSION):
            sql, params = pg_functions.RECORD_CALL_SQL, (*codec.event_to_row_with_ids(event), *arrays)
        else:
            sql, params = pg_functions.RECORD_EVENT_SQL, (*codec.event_to_row(event), *arrays)
        try:
            row = self._run(lambda tx: tx.one(sql, params), single=True)
        except _NoFunctions:
            return super().record_event(event, claims)
        return bool(row and row[0])

    # -- the multi-statement path (schema < 3, use_functions=False) -------------------------

    def _table_exists(self, tx: Tx, table: str) -> bool:
        row = tx.one("SELECT to_regclass(?) IS NOT NULL", (table,))
        return bool(row and row[0])

    def _migration_lock(self, tx: Tx) -> None:
        tx.exec("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))

    def _lock_partitions(self, tx: Tx, keys: Sequence[tuple[str, str]]) -> None:
        if not keys:
            return
        budgets = [k[0] for k in keys]
        partitions = [k[1] for k in keys]
        if not self._known_locks.issuperset(keys):
            tx.exec(_CREATE_LOCK_ROWS, (budgets, partitions))
        locked = tx.exec(_LOCK_ROWS, (budgets, partitions))
        if locked != len(keys):  # a cached row whose creating transaction rolled back
            tx.exec(_CREATE_LOCK_ROWS, (budgets, partitions))
            locked = tx.exec(_LOCK_ROWS, (budgets, partitions))
            if locked != len(keys):  # pragma: no cover - lock rows are never deleted
                raise StoreError(f"budget lock rows missing: locked {locked} of {len(keys)}")
        self._known_locks.update(keys)

    def _window_sums(self, tx: Tx, claims: Sequence[BudgetClaim]) -> list[Sums]:
        if not claims:
            return []
        rows = tx.all(_WINDOW_SUMS, ([c.budget for c in claims], [c.partition for c in claims],
                                     [c.window_start for c in claims]))  # fmt: skip
        return [(int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows]


_CLOSED = (ReservationStatus.RELEASED, ReservationStatus.EXPIRED)


def _claim_arrays(claims: Sequence[BudgetClaim]) -> tuple[str, ...]:
    """A reservation's claims as the parallel arrays `costplane_reserve` takes (pg_functions.CLAIM_PARAMS)."""
    return (
        pg_array([c.budget for c in claims]), pg_array([c.partition for c in claims]),
        pg_array([c.bucket for c in claims]), pg_array([c.window_start for c in claims]),
        pg_array([c.amount_nano for c in claims]), pg_array([c.limit_nano for c in claims]),
        pg_array([c.limit_calls for c in claims]), pg_array([c.limit_concurrent for c in claims]),
        pg_array([bool(c.hard) for c in claims]),
    )  # fmt: skip


def pg_array(values: Sequence[str | int | bool | None]) -> str:
    """A one-dimensional array as PostgreSQL's array literal, for a parameter the statement casts
    (`?::text[]`, `?::bigint[]`, `?::boolean[]`): every element quoted, NULL for None.

    The hot path passes arrays this way because psycopg, given a Python list, inspects its
    elements to choose a dumper on every execution: ~35 µs of the reservation's ~40 µs of
    parameter conversion (nine arrays), against ~4 µs for the literals (docs/performance.md)."""
    parts = []
    for value in values:
        if value is None:
            parts.append("NULL")
        elif value is True or value is False:
            parts.append("t" if value else "f")
        elif isinstance(value, int):
            parts.append(str(value))
        else:
            parts.append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
