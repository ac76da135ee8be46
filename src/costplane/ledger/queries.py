"""Read-side and bookkeeping queries of the SQL stores: events, spend breakdowns,
decisions, the response cache, virtual keys, stats. Shared by SQLite and PostgreSQL.

SQL is written with `?` placeholders (the PostgreSQL driver rewrites them to `%s`)
and never contains `%`. The only caller-supplied names that reach SQL text are
validated against `codec.QUERY_COLUMNS`; every value is bound.
"""

from __future__ import annotations

import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from costplane.ledger import calls, codec, rollups
from costplane.ledger.codec import column_list
from costplane.ledger.store import CachedResponse, SpendRow, StoreError
from costplane.ledger.types import CallIds, CostEvent, DecisionRecord, KeyRecord, ReservationStatus
from costplane.ledger.usertypes import Scope

__all__ = ["INSERT_DECISION", "INSERT_EVENT", "Row", "SqlQueries", "Tx", "insert_sql"]

T = TypeVar("T")
Row = tuple[Any, ...]

class Tx(ABC):
    """One open transaction: the few calls the shared logic needs."""

    @abstractmethod
    def exec(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; returns the number of rows it changed."""

    @abstractmethod
    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abstractmethod
    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None


def insert_sql(table: str, columns: Sequence[str], conflict: str = "") -> str:
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({column_list(columns)}) VALUES ({marks}){conflict}"


INSERT_EVENT = insert_sql("cost_events", codec.EVENT_COLUMNS, " ON CONFLICT (id) DO NOTHING")
INSERT_DECISION = insert_sql("decisions", codec.DECISION_COLUMNS, " ON CONFLICT (id) DO NOTHING")
_INSERT_KEY = insert_sql("virtual_keys", codec.KEY_COLUMNS)
_PUT_CACHE = insert_sql(
    "response_cache",
    codec.CACHE_COLUMNS,
    " ON CONFLICT (request_hash) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in codec.CACHE_COLUMNS[1:]),
)
_SELECT_EVENT = f"SELECT {column_list(codec.EVENT_READ_COLUMNS)} FROM cost_events"
_SELECT_EVENT_BEFORE_IDS = f"SELECT {column_list(codec.EVENT_COLUMNS)} FROM cost_events"  # schema < 13
_SELECT_DECISION = f"SELECT {column_list(codec.DECISION_COLUMNS)} FROM decisions"
_SELECT_KEY = f"SELECT {column_list(codec.KEY_COLUMNS)} FROM virtual_keys"
_BUCKET_US = {"hour": 3_600_000_000, "day": 86_400_000_000}
_POLICY_DENIAL = re.compile(r"denied by policy '([^']+)'")  # core.decision's message for a policy deny


class SqlQueries(ABC):
    """The `Store` methods that are plain queries; a subclass supplies the transactions."""

    url: str
    dialect: str
    #: answer `spend` from the rollup tables when they can (schema v8); False forces the raw scan
    use_rollups: bool = True
    _has_rollups: bool = False  # memo: the rollup tables exist (they are never dropped)
    _has_call_ids: bool = False  # memo: cost_events has the call-id columns (schema_calls, v13)

    @abstractmethod
    def _write(self, body: Callable[[Tx], T]) -> T:
        """Run `body` in one write transaction (serialised with other writers where needed)."""

    def _call_write(self, body: Callable[[Tx], T]) -> T:
        """`_write` for the ledger rows of one call or one batch of calls: a bounded number of rows,
        never a scan or a bulk statement. A driver may run it differently (SQLite keeps its
        statement journals in memory for it)."""
        return self._write(body)

    @abstractmethod
    def _read(self, body: Callable[[Tx], T]) -> T: ...

    def _read_row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """One read statement's first row. A driver may send it without a transaction around it
        (PostgreSQL: one round trip instead of three; under READ COMMITTED a lone statement sees
        the same snapshot either way)."""
        return self._read(lambda tx: tx.one(sql, params))

    @abstractmethod
    def _table_exists(self, tx: Tx, table: str) -> bool: ...

    def schema_version(self) -> int:
        def body(tx: Tx) -> int:
            if not self._table_exists(tx, "schema_version"):
                return 0
            row = tx.one("SELECT MAX(version) FROM schema_version")
            return int(row[0]) if row and row[0] is not None else 0

        return self._read(body)

    # -- decisions --------------------------------------------------------------------
    def record_decision(self, decision: DecisionRecord) -> None:
        row = codec.decision_to_row(decision)
        self._call_write(lambda tx: tx.exec(INSERT_DECISION, row))

    def list_decisions(
        self, *, effect: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[DecisionRecord]:
        """Newest first."""
        where, params = self._filters(since=since)
        if effect is not None:
            where.append("effect = ?")
            params.append(effect)
        sql = f"{_SELECT_DECISION}{_where(where)} ORDER BY ts DESC, id DESC LIMIT ?"
        rows = self._read(lambda tx: tx.all(sql, (*params, int(limit))))
        return [codec.row_to_decision(r) for r in rows]

    # -- events and queries -------------------------------------------------------------
    def get_event(self, event_id: str) -> CostEvent | None:
        select = self._select_event()
        row = self._read(lambda tx: tx.one(f"{select} WHERE id = ?", (event_id,)))
        return None if row is None else codec.row_to_event(row)

    # -- counted once (ledger/calls.py) ------------------------------------------------------
    def _select_event(self) -> str:
        """The event select with the call-id columns once the schema has them (a store opened on
        an older schema, before `migrate`, still reads its events)."""
        if not self._has_call_ids:
            self._has_call_ids = self.schema_version() >= 13
        return _SELECT_EVENT if self._has_call_ids else _SELECT_EVENT_BEFORE_IDS

    @abstractmethod
    def _lock_partitions(self, tx: Tx, keys: Sequence[tuple[str, str]]) -> None:
        """Serialise every writer of these (budget, partition) windows until commit."""

    def find_gateway_event(self, response_id: str | None, trace_id: str | None,
                           span_ids: Sequence[str] = ()) -> CostEvent | None:
        """The gateway's cost event of a call, by response id or by trace id and span id."""
        return self._read(lambda tx: calls.find_gateway(tx, response_id, trace_id, span_ids))

    def link_call(self, event_id: str, ids: CallIds, claims_for: calls.ClaimsFor,
                  span_ids: Sequence[str] = ()) -> list[tuple[str, str]]:
        """Store the call ids of event `event_id` and count its call once (calls.link): returns the
        (superseded OTLP event, gateway event) pairs."""
        return self._write(lambda tx: calls.link(tx, event_id, ids, span_ids, claims_for, self._lock_partitions))

    def link_calls(self, items: Sequence[tuple[str, CallIds]], claims_for: calls.ClaimsFor,
                   span_ids: Mapping[str, Sequence[str]] | None = None) -> list[tuple[str, str]]:
        """`link_call` for many events in ONE write transaction (the gateway's batches, the
        receiver's events of one export); `span_ids[event id]` as `link_call`'s."""
        lock, spans = self._lock_partitions, span_ids or {}
        return self._write(lambda tx: [pair for event_id, ids in items for pair in
                                       calls.link(tx, event_id, ids, spans.get(event_id, ()), claims_for, lock)])

    def gateway_calls(self, response_ids: Sequence[str], trace_ids: Sequence[str]) -> Mapping[tuple[str, str], str]:
        """The gateway events of many calls at once (calls.gateway_index)."""
        return self._read(lambda tx: calls.gateway_index(tx, list(response_ids), list(trace_ids)))

    def list_events(self, *, since: datetime | None = None, limit: int = 1000) -> list[CostEvent]:
        """Newest first."""
        where, params = self._filters(since=since)
        sql = f"{self._select_event()}{_where(where)} ORDER BY ts DESC, id DESC LIMIT ?"
        rows = self._read(lambda tx: tx.all(sql, (*params, int(limit))))
        return [codec.row_to_event(r) for r in rows]

    def denial_counts(self, *, since: datetime, until: datetime,
                      scope: Scope | None = None) -> dict[tuple[str, str], int]:
        """Denials in [since, until) counted by what denied: ('budget', name), ('policy', name) or
        ('guard', code) — loop detection, unknown price, SLO throttle, …. One grouped query
        (index decisions_effect_ts); `scope` keeps the decisions it allows (team or project)."""
        pg = self.dialect == "postgres"
        code, budget, project = (("(result ->> 'code')", "(result ->> 'budget')", "(context ->> 'project')") if pg
                                 else ("json_extract(result, '$.code')", "json_extract(result, '$.budget')",
                                       "json_extract(context, '$.project')"))  # fmt: skip
        conditions = ["effect = ?", "ts >= ?", "ts < ?"]
        params: list[Any] = ["deny", codec.to_us(since), codec.to_us(until)]
        if scope is not None:
            sql, values = scope.sql("team", project)
            conditions.append(sql)
            params += values
        sql = (f"SELECT {code}, {budget}, MIN(reason), COUNT(*) FROM decisions{_where(conditions)}"
               f" GROUP BY {code}, {budget}, CAST(policies AS TEXT)")  # fmt: skip
        out: dict[tuple[str, str], int] = {}
        for c, b, reason, n in self._read(lambda tx: tx.all(sql, params)):
            named = _POLICY_DENIAL.search(str(reason or ""))
            key = ("budget", str(b)) if b else ("policy", named.group(1)) if named else ("guard", str(c or "denied"))
            out[key] = out.get(key, 0) + int(n)
        return out

    def count_events(self) -> int:
        return self._count("SELECT COUNT(*) FROM cost_events")

    def spend(
        self,
        *,
        group_by: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        where: Mapping[str, str] | None = None,
        bucket: str | None = None,
    ) -> list[SpendRow]:
        names = list(dict.fromkeys(group_by))
        columns = [_column(name) for name in names]
        filters = dict(where or {})
        for name in filters:
            _column(name)
        if bucket is not None and bucket not in _BUCKET_US:
            raise ValueError(f"unknown time bucket {bucket!r}: use 'hour' or 'day'")
        if self._rollups_usable() and rollups.routable(names, filters):
            since_us = None if since is None else codec.to_us(since)
            until_us = None if until is None else codec.to_us(until)
            sql, params = rollups.union_sql(rollups.plan(since_us, until_us, bucket), names, filters, bucket)
            nullable = [name in rollups.NULLABLE for name in names]
            return self._spend_rows(sql, params, names, nullable, no_jit=self.dialect == "postgres")
        conditions, params = self._filters(since=since, until=until)
        for name, value in filters.items():
            conditions.append(f"{_column(name)} = ?")
            params.append(value)
        bucket_expr = f"(ts / {_BUCKET_US[bucket]}) * {_BUCKET_US[bucket]}" if bucket else "NULL"
        keys = [*columns, bucket_expr]
        sql = (
            f"SELECT {', '.join(keys)}, CAST(SUM(cost_nano) AS BIGINT), CAST(SUM(saved_nano) AS BIGINT),"
            " COUNT(*), CAST(SUM(input_tokens) AS BIGINT), CAST(SUM(output_tokens) AS BIGINT)"
            f" FROM cost_events{_where(conditions)}"
        )
        if columns or bucket:
            sql += " GROUP BY " + ", ".join(str(i + 1) for i in range(len(keys) - (0 if bucket else 1)))
        return self._spend_rows(sql, params, names, [False] * len(names))

    def spend_windows(self, windows: Sequence[tuple[datetime, datetime]], *, group_by: Sequence[str] = (),
                      where: Mapping[str, str] | None = None) -> list[list[SpendRow]]:
        """`spend(group_by, since, until, where)` of every [since, until) window, in one statement
        per 50 windows (a dashboard series in one round trip); rows of window i at index i."""
        names = list(dict.fromkeys(group_by))
        filters = dict(where or {})
        for name in [*names, *filters]:
            _column(name)
        routed = self._rollups_usable() and rollups.routable(names, filters)
        nullable = [name in rollups.NULLABLE for name in names]
        out: list[list[SpendRow]] = [[] for _ in windows]
        for first in range(0, len(windows), 50):  # SQLite caps a compound SELECT at 500 terms
            parts: list[rollups.Part] = []
            labels: list[int] = []
            for index in range(first, min(first + 50, len(windows))):
                lo, hi = (codec.to_us(t) for t in windows[index])
                pieces = rollups.plan(lo, hi, None) if routed else [rollups.Part("raw", lo, hi)]
                parts += pieces
                labels += [index] * len(pieces)
            sql, params = rollups.union_sql(parts, names, filters, None, labels)
            for r in self._read(functools.partial(_all, sql=sql, params=params, no_jit=self.dialect == "postgres")):
                out[int(r[0])] += self._to_rows([r[1:]], names, nullable)
        for rows_of in out:
            rows_of.sort(key=lambda s: (-s.cost_nano, tuple((v is None, v or "") for v in s.group.values())))
        return out

    def _spend_rows(self, sql: str, params: Sequence[Any], names: Sequence[str],
                    nullable: Sequence[bool], *, no_jit: bool = False) -> list[SpendRow]:
        """Run a spend query (keys, bucket, cost, saved, events, input, output) into sorted rows;
        `nullable[i]`: key i reads a rollup, where '' stands for NULL."""
        read = functools.partial(_all, sql=sql, params=params, no_jit=no_jit)
        rows = self._to_rows(self._read(read), names, nullable)
        rows.sort(key=lambda s: (s.bucket or codec.from_us(0), -s.cost_nano,
                                 tuple((v is None, v or "") for v in s.group.values())))  # fmt: skip
        return rows

    @staticmethod
    def _to_rows(rows: Sequence[Row], names: Sequence[str], nullable: Sequence[bool]) -> list[SpendRow]:
        n = len(names)
        out = [
            SpendRow(
                group={name: (None if nullable[i] and r[i] == "" else r[i]) for i, name in enumerate(names)},
                bucket=None if r[n] is None else codec.from_us(r[n]),
                cost_nano=int(r[n + 1] or 0),
                saved_nano=int(r[n + 2] or 0),
                events=int(r[n + 3]),
                input_tokens=int(r[n + 4] or 0),
                output_tokens=int(r[n + 5] or 0),
            )
            for r in rows
            if int(r[n + 3] or 0)  # an ungrouped SUM over no rows still yields one row
        ]
        return out

    def rebuild_rollups(self) -> Mapping[str, int]:
        """Recompute `spend_hourly`/`spend_daily` from `cost_events` in one transaction (repair,
        or after a bulk load with the triggers dropped); returns the row counts."""
        if not self._rollups_usable(force=True):
            raise StoreError("the spend rollups need schema version 8: run migrate() first")

        def body(tx: Tx) -> dict[str, int]:
            for statement in rollups.rebuild_statements(self.dialect):
                tx.exec(statement)
            out: dict[str, int] = {}
            for table in ("spend_hourly", "spend_daily"):
                row = tx.one(f"SELECT COUNT(*) FROM {table}")
                out[table] = int(row[0]) if row else 0
            return out

        return self._write(body)

    def _rollups_usable(self, *, force: bool = False) -> bool:
        if not (self.use_rollups or force):
            return False
        if not self._has_rollups:
            self._has_rollups = self._read(lambda tx: self._table_exists(tx, "spend_daily"))
        return self._has_rollups

    def count_recent_requests(self, run: str, request_hash: str, since: datetime) -> int:
        return self._count(
            "SELECT COUNT(*) FROM cost_events WHERE run = ? AND request_hash = ? AND ts >= ?",
            (run, request_hash, codec.to_us(since)),
        )

    # -- response cache -------------------------------------------------------------------
    def cache_get(self, request_hash: str, now: datetime) -> CachedResponse | None:
        sql = (f"SELECT {column_list(codec.CACHE_COLUMNS)} FROM response_cache"
               " WHERE request_hash = ? AND expires_at > ?")  # fmt: skip
        row = self._read(lambda tx: tx.one(sql, (request_hash, codec.to_us(now))))
        return None if row is None else codec.row_to_cache(row)

    def cache_put(self, entry: CachedResponse) -> None:
        row = codec.cache_to_row(entry)
        self._write(lambda tx: tx.exec(_PUT_CACHE, row))

    def cache_purge(self, now: datetime) -> int:
        """Delete expired cache entries (not part of the protocol; housekeeping)."""
        return self._write(lambda tx: tx.exec("DELETE FROM response_cache WHERE expires_at <= ?",
                                              (codec.to_us(now),)))  # fmt: skip

    # -- virtual keys ------------------------------------------------------------------------
    def create_key(self, key: KeyRecord) -> None:
        row = codec.key_to_row(key)
        self._write(lambda tx: tx.exec(_INSERT_KEY, row))

    def key_by_hash(self, secret_hash: str) -> KeyRecord | None:
        row = self._read(lambda tx: tx.one(f"{_SELECT_KEY} WHERE secret_hash = ?", (secret_hash,)))
        return None if row is None else codec.row_to_key(row)

    def get_key(self, key_id: str) -> KeyRecord | None:
        row = self._read(lambda tx: tx.one(f"{_SELECT_KEY} WHERE id = ?", (key_id,)))
        return None if row is None else codec.row_to_key(row)

    def list_keys(self) -> list[KeyRecord]:
        rows = self._read(lambda tx: tx.all(f"{_SELECT_KEY} ORDER BY created_at, id"))
        return [codec.row_to_key(r) for r in rows]

    # -- introspection -----------------------------------------------------------------------
    def stats(self) -> Mapping[str, Any]:
        def body(tx: Tx) -> dict[str, Any]:
            def count(sql: str, params: Sequence[Any] = ()) -> int:
                row = tx.one(sql, params)
                return int(row[0]) if row else 0

            return {
                "backend": self.dialect,
                "events": count("SELECT COUNT(*) FROM cost_events"),
                "open_reservations": count(
                    "SELECT COUNT(*) FROM reservations WHERE status = ?", (ReservationStatus.OPEN,)
                ),
                "decisions": count("SELECT COUNT(*) FROM decisions"),
                "keys": count("SELECT COUNT(*) FROM virtual_keys"),
            }

        out = self._read(body)
        out["schema_version"] = self.schema_version()
        return out

    # -- helpers ---------------------------------------------------------------------------
    def _count(self, sql: str, params: Sequence[Any] = ()) -> int:
        row = self._read_row(sql, params)
        return int(row[0]) if row else 0

    @staticmethod
    def _filters(
        *, since: datetime | None = None, until: datetime | None = None
    ) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if since is not None:
            where.append("ts >= ?")
            params.append(codec.to_us(since))
        if until is not None:
            where.append("ts < ?")
            params.append(codec.to_us(until))
        return where, params



def _column(name: str) -> str:
    try:
        return codec.QUERY_COLUMNS[name]
    except KeyError:
        allowed = ", ".join(codec.QUERY_COLUMNS)
        raise ValueError(f"unknown dimension {name!r} for a spend query; use one of: {allowed}") from None


def _all(tx: Tx, *, sql: str, params: Sequence[Any], no_jit: bool = False) -> list[Row]:
    if no_jit:  # rollup reads are small: PostgreSQL would JIT-compile a many-part UNION for seconds,
        # and start parallel workers that cost more than they save (measured: bench_visibility.py)
        tx.exec("SELECT set_config('jit', 'off', true), set_config('max_parallel_workers_per_gather', '0', true)")
    return tx.all(sql, params)


def _where(conditions: list[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""
