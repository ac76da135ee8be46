"""The store logic shared by SQLite and PostgreSQL: one SQL text, two drivers.

SQL here is written with `?` placeholders (the PostgreSQL driver rewrites them
to `%s`) and never contains `%`. Column names that come from callers are only
ever the validated names of `codec.QUERY_COLUMNS`; values are always bound.

A subclass supplies the transaction runner (`_write` / `_read`), and may
override `_lock_partitions` (PostgreSQL row locks; SQLite's `BEGIN IMMEDIATE`
already serialises writers) and `_window_sums` (one query instead of one per claim).
"""

from __future__ import annotations

import functools
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from costplane.ledger import calls as call_ids
from costplane.ledger import codec, rollups
from costplane.ledger.alertqueries import AlertQueries
from costplane.ledger.codec import column_list
from costplane.ledger.envqueries import EnvQueries
from costplane.ledger.lease_store import LeaseQueries
from costplane.ledger.migrations import LATEST, MIGRATIONS, VERSION_TABLE, statements
from costplane.ledger.queries import INSERT_DECISION, INSERT_EVENT, Row, SqlQueries, Tx, insert_sql
from costplane.ledger.replayqueries import ReplayQueries
from costplane.ledger.runqueries import RunQueries
from costplane.ledger.store import StoreError
from costplane.ledger.types import (
    BudgetClaim,
    CallIds,
    ClaimState,
    CostEvent,
    DecisionRecord,
    Reservation,
    ReservationStatus,
    ReserveResult,
)
from costplane.ledger.userqueries import UserQueries

__all__ = ["CALL_IDS_VERSION", "EVENT_CLAIMS_VERSION", "Row", "SqlStore", "Sums", "Tx", "admit_claims",
           "partition_keys"]

Sums = tuple[int, int, int, int]  # spent, reserved, calls, concurrent of one claim's window

_INSERT_RESERVATION = insert_sql("reservations", codec.RESERVATION_COLUMNS)
# the ledger's event insert with the call ids (schema v13 on); INSERT_EVENT before that
_INSERT_EVENT_IDS = insert_sql("cost_events", codec.EVENT_WRITE_COLUMNS, " ON CONFLICT (id) DO NOTHING")
# a batch's event insert (schema v17 on): marked, so the rollup trigger leaves it to the batch's sums
_INSERT_EVENT_ROLLED = insert_sql("cost_events", (*codec.EVENT_WRITE_COLUMNS, rollups.ROLLED_UP),
                                  " ON CONFLICT (id) DO NOTHING")
#: the schema version from which events are inserted with their call ids, and from which an
#: event observed after the fact keeps its counter rows (`event_claims`) and a gateway event
#: supersedes it in its own settlement
CALL_IDS_VERSION, EVENT_CLAIMS_VERSION = 13, 15
# Every counter change is "add this delta to the row", created on first use.
_ADD_COUNTERS = (
    'INSERT INTO budget_counters (budget, "partition", bucket, spent_nano, reserved_nano, calls, concurrent)'
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (budget, \"partition\", bucket) DO UPDATE SET"
    " spent_nano = budget_counters.spent_nano + excluded.spent_nano,"
    " reserved_nano = budget_counters.reserved_nano + excluded.reserved_nano,"
    " calls = budget_counters.calls + excluded.calls,"
    " concurrent = budget_counters.concurrent + excluded.concurrent"
)


@functools.cache
def _window_sums_sql(n: int) -> str:
    """Sums of every claim's window (bucket >= window_start) as rows (claim index, spent, reserved,
    calls, concurrent); the casts let PostgreSQL type the VALUES list."""
    keys = ", ".join(f"({i}, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT))" for i in range(n))
    return (
        f"WITH k(i, b, p, ws) AS (VALUES {keys}) "
        "SELECT k.i, CAST(COALESCE(SUM(c.spent_nano), 0) AS BIGINT), CAST(COALESCE(SUM(c.reserved_nano), 0) AS BIGINT),"
        " CAST(COALESCE(SUM(c.calls), 0) AS BIGINT), CAST(COALESCE(SUM(c.concurrent), 0) AS BIGINT)"
        ' FROM k LEFT JOIN budget_counters c ON c.budget = k.b AND c."partition" = k.p AND c.bucket >= k.ws'
        " GROUP BY k.i"
    )


_SELECT_RESERVATION = f"SELECT {column_list(codec.RESERVATION_COLUMNS)} FROM reservations"
_CLOSED = (ReservationStatus.RELEASED, ReservationStatus.EXPIRED)


def partition_keys(claims: Iterable[BudgetClaim]) -> list[tuple[str, str]]:
    """The distinct (budget, partition) pairs of some claims, in the one global lock order."""
    return sorted({(c.budget, c.partition) for c in claims})


def admit_claims(claims: Sequence[BudgetClaim], sums: Sequence[Sums]) -> list[ClaimState] | ReserveResult:
    """Every claim's state with one more call, one more concurrent request and its amount reserved
    on top of its window's `sums`, or the refusal of the first hard limit this breaks. Two claims of
    one reservation on the same window: the second sees the first. The one limit check of every
    backend's reserve (SQL stores, memory)."""
    states: list[ClaimState] = []
    earlier: list[BudgetClaim] = []  # claims of this reservation already added
    for claim, (spent, reserved, calls, conc) in zip(claims, sums, strict=True):
        for prev in earlier:
            if (prev.budget, prev.partition) == (claim.budget, claim.partition) and prev.bucket >= claim.window_start:
                reserved, calls, conc = reserved + prev.amount_nano, calls + 1, conc + 1
        state = _state(claim, (spent, reserved + claim.amount_nano, calls + 1, conc + 1))
        broken = state.exceeded if claim.hard else None
        if broken is not None:
            return ReserveResult(ok=False, refused=state, refused_limit=broken)
        states.append(state)
        earlier.append(claim)
    return states


def _state(claim: BudgetClaim, sums: Sums) -> ClaimState:
    return ClaimState(
        budget=claim.budget,
        partition=claim.partition,
        spent_nano=sums[0],
        reserved_nano=sums[1],
        calls=sums[2],
        concurrent=sums[3],
        limit_nano=claim.limit_nano,
        limit_calls=claim.limit_calls,
        limit_concurrent=claim.limit_concurrent,
        hard=claim.hard,
    )


# RunQueries: runs (v5); EnvQueries: environments (v4); AlertQueries: alert marks (v6) and the
# visibility queries (overview, spend breakdowns)
# ReplayQueries: keyset pages of decisions/events for policy replay
# LeaseQueries: the store's side of lease-based budgets (schema v16, ledger/leases.py)
class SqlStore(SqlQueries, RunQueries, EnvQueries, AlertQueries, UserQueries, ReplayQueries, LeaseQueries):
    """The `Store` protocol in SQL: schema, reservations and budget counters here, queries
    in `SqlQueries`. Drivers supply `_write`/`_read`/`_table_exists`/`close`."""

    _schema_seen: int = 0  # memo: the highest schema version this store has seen applied

    @abstractmethod
    def close(self) -> None: ...

    def _schema_at_least(self, version: int) -> bool:
        """Whether schema `version` is applied (read once it is; versions are never removed)."""
        if self._schema_seen < version:
            self._schema_seen = self.schema_version()
        return self._schema_seen >= version

    def _event_insert(self, event: CostEvent) -> tuple[str, Row]:
        """The INSERT of one event and its parameters: with the call ids once the schema has them."""
        if self._schema_at_least(CALL_IDS_VERSION):
            return _INSERT_EVENT_IDS, codec.event_to_row_with_ids(event)
        return INSERT_EVENT, codec.event_to_row(event)

    def _batch_inserts(self, events: Sequence[CostEvent]) -> tuple[list[tuple[str, Row]], bool]:
        """The INSERTs of a batch of events written in one transaction, and whether the batch adds
        its own rollup sums: from schema v17 the rows are marked `rolled_up` (the trigger skips
        them) and the writer runs `rollups.batch_upserts` over the rows it inserted."""
        if not self._schema_at_least(rollups.BATCH_ROLLUP_VERSION):
            return [self._event_insert(e) for e in events], False
        return [(_INSERT_EVENT_ROLLED, (*codec.event_to_row_with_ids(e), True)) for e in events], True

    def _reconcile(self, tx: Tx, event: CostEvent, reconciles: bool) -> None:
        """A gateway event (not an OTLP one) with call ids supersedes the earlier OTLP/SDK events of
        its call, in the settlement's own transaction (ledger/calls.py)."""
        if reconciles and not event.id.startswith("otel-"):
            call_ids.reconcile(tx, event.id, CallIds(event.response_id, event.trace_id, event.span_id))

    def _reconcile_many(self, tx: Tx, events: Sequence[CostEvent]) -> None:
        """`_reconcile` for a batch of events inserted in one transaction: one probe per 400 events."""
        call_ids.reconcile_many(tx, [(e.id, CallIds(e.response_id, e.trace_id, e.span_id)) for e in events
                                     if not e.id.startswith("otel-") and (e.response_id or e.trace_id)])

    def _lock_partitions(self, tx: Tx, keys: Sequence[tuple[str, str]]) -> None:
        """Serialise every writer of these (budget, partition) windows until commit."""

    def _migration_lock(self, tx: Tx) -> None:
        """Serialise concurrent `migrate` calls (SQLite: already, by BEGIN IMMEDIATE)."""

    def _window_sums(self, tx: Tx, claims: Sequence[BudgetClaim]) -> list[Sums]:
        """What every claim's window has used, in ONE statement whatever the number of claims."""
        if not claims:
            return []
        params: list[Any] = []
        for c in claims:
            params += [c.budget, c.partition, c.window_start]
        sums = {int(r[0]): (int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in tx.all(_window_sums_sql(len(claims)),
                                                                                      params)}
        return [sums[i] for i in range(len(claims))]

    # -- schema ---------------------------------------------------------------------
    def migrate(self, target: int | None = None) -> None:
        """Apply every missing schema version up to `target` (default: latest), idempotently."""
        target = LATEST if target is None else target
        now = codec.to_us(datetime.now(UTC))

        def body(tx: Tx) -> None:
            self._migration_lock(tx)
            tx.exec(VERSION_TABLE)
            have = {int(r[0]) for r in tx.all("SELECT version FROM schema_version")}
            for version, _ in MIGRATIONS:
                if version > target or version in have:
                    continue
                for statement in statements(self.dialect, version):
                    tx.exec(statement)
                tx.exec("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, now))

        self._write(body)
        self._schema_seen = max(self._schema_seen, target)

    # -- reservations and budgets -----------------------------------------------------
    def reserve(self, reservation: Reservation, decision: DecisionRecord) -> ReserveResult:
        claims = reservation.claims
        res_row = codec.reservation_to_row(reservation)
        res_row = (res_row[0], ReservationStatus.OPEN, *res_row[2:])
        dec_row = codec.decision_to_row(decision)

        def body(tx: Tx) -> ReserveResult:
            self._lock_partitions(tx, partition_keys(claims))
            states = admit_claims(claims, self._window_sums(tx, claims))
            if isinstance(states, ReserveResult):
                return states
            tx.many(_ADD_COUNTERS, [_delta(c, reserved=c.amount_nano, calls=1, concurrent=1) for c in claims])
            tx.exec(_INSERT_RESERVATION, res_row)
            tx.exec(INSERT_DECISION, dec_row)
            return ReserveResult(ok=True, states=tuple(states))

        return self._call_write(body)

    def settle(self, reservation_id: str, event: CostEvent) -> tuple[ClaimState, ...]:
        insert_event, event_row = self._event_insert(event)
        reconciles = bool(event.response_id or event.trace_id) and self._schema_at_least(EVENT_CLAIMS_VERSION)

        def body(tx: Tx) -> tuple[ClaimState, ...]:
            row = tx.one(
                "UPDATE reservations SET status = ? WHERE id = ? AND status = ? RETURNING claims",
                (ReservationStatus.SETTLED, reservation_id, ReservationStatus.OPEN),
            )
            prior = ReservationStatus.OPEN
            if row is None:
                row = tx.one("SELECT claims, status FROM reservations WHERE id = ?", (reservation_id,))
                if row is None:
                    raise StoreError(f"unknown reservation {reservation_id!r}")
                prior = row[1]
                if prior != ReservationStatus.SETTLED:
                    tx.exec("UPDATE reservations SET status = ? WHERE id = ?",
                            (ReservationStatus.SETTLED, reservation_id))  # fmt: skip
            claims = codec.claims_from_json(row[0])
            self._lock_partitions(tx, partition_keys(claims))
            inserted = tx.exec(insert_event, event_row) == 1
            cost = int(event.cost_nano) if inserted else 0
            if inserted:
                self._reconcile(tx, event, reconciles)
            if prior == ReservationStatus.OPEN:
                deltas = [_delta(c, spent=cost, reserved=-c.amount_nano, concurrent=-1) for c in claims]
            elif cost:  # released/expired earlier: the call (given back then) and its money count again
                call = 1 if prior in _CLOSED else 0
                deltas = [_delta(c, spent=cost, calls=call) for c in claims]
            else:
                deltas = []
            if deltas:
                tx.many(_ADD_COUNTERS, deltas)
            return tuple(_state(c, s) for c, s in zip(claims, self._window_sums(tx, claims), strict=True))

        return self._call_write(body)

    def release(self, reservation_id: str, status: str = ReservationStatus.RELEASED) -> bool:
        if status not in _CLOSED:
            raise ValueError(f"release status must be 'released' or 'expired', got {status!r}")

        def body(tx: Tx) -> bool:
            row = tx.one(
                "UPDATE reservations SET status = ? WHERE id = ? AND status = ? RETURNING claims",
                (status, reservation_id, ReservationStatus.OPEN),
            )
            if row is None:
                return False
            claims = codec.claims_from_json(row[0])
            self._lock_partitions(tx, partition_keys(claims))
            back = [_delta(c, reserved=-c.amount_nano, calls=-1, concurrent=-1) for c in claims]
            tx.many(_ADD_COUNTERS, back)
            return True

        return self._call_write(body)

    def expire_reservations(self, now: datetime) -> int:
        due = self._read(lambda tx: tx.all(
            "SELECT id FROM reservations WHERE status = ? AND expires_at <= ? ORDER BY expires_at",
            (ReservationStatus.OPEN, codec.to_us(now)),
        ))  # fmt: skip
        return sum(1 for (rid,) in due if self.release(rid, ReservationStatus.EXPIRED))

    def open_reservations(self) -> int:
        return self._count("SELECT COUNT(*) FROM reservations WHERE status = ?", (ReservationStatus.OPEN,))

    def get_reservation(self, reservation_id: str) -> Reservation | None:
        row = self._read(lambda tx: tx.one(f"{_SELECT_RESERVATION} WHERE id = ?", (reservation_id,)))
        return None if row is None else codec.row_to_reservation(row)

    def claim_states(self, claims: Sequence[BudgetClaim]) -> tuple[ClaimState, ...]:
        sums = self._read(lambda tx: self._window_sums(tx, claims))
        return tuple(_state(c, s) for c, s in zip(claims, sums, strict=True))

    def record_event(self, event: CostEvent, claims: Sequence[BudgetClaim] = ()) -> bool:
        """Insert an event without a reservation; its cost is added to each claim's row as
        spent (calls and concurrency are not touched: no upstream call was reserved)."""
        insert_event, event_row = self._event_insert(event)
        reconciles = bool(event.response_id or event.trace_id) and self._schema_at_least(EVENT_CLAIMS_VERSION)

        def body(tx: Tx) -> bool:
            self._lock_partitions(tx, partition_keys(claims))
            if tx.exec(insert_event, event_row) != 1:
                return False
            self._reconcile(tx, event, reconciles)
            if reconciles and claims and event.id.startswith("otel-"):
                call_ids.remember_claims(tx, event.id, claims)  # a gateway event may supersede it later
            if claims:
                tx.many(_ADD_COUNTERS, [_delta(c, spent=int(event.cost_nano)) for c in claims])
            return True

        return self._call_write(body)

    def record_spend(self, events: Sequence[CostEvent], claims: Sequence[Sequence[BudgetClaim]],
                     decisions: Sequence[DecisionRecord | None]) -> tuple[tuple[bool, ...], tuple[ClaimState, ...]]:
        """Spend observed after the fact, in ONE transaction: each event is inserted (an id already
        stored is skipped, with its decision), its cost added as spent to each of its claims' rows
        whatever the limit (the money is already spent; calls and concurrency are not touched), and
        its decision logged. Returns whether each event was new, and the states afterwards of the
        distinct windows claimed (in order of first claim)."""
        inserts, summed = self._batch_inserts(events)
        remembers = self._schema_at_least(EVENT_CLAIMS_VERSION)
        decision_rows = [None if d is None else codec.decision_to_row(d) for d in decisions]
        windows: dict[tuple[str, str, int], BudgetClaim] = {}
        for group in claims:
            for claim in group:
                windows.setdefault((claim.budget, claim.partition, claim.window_start), claim)
        distinct = list(windows.values())

        def body(tx: Tx) -> tuple[tuple[bool, ...], tuple[ClaimState, ...]]:
            self._lock_partitions(tx, partition_keys(distinct))
            inserted: list[bool] = []
            deltas: list[Row] = []
            written: list[Row] = []
            for event, (insert_event, row), group, decision in zip(events, inserts, claims, decision_rows,
                                                                   strict=True):
                new = tx.exec(insert_event, row) == 1
                inserted.append(new)
                if not new:
                    continue
                written.append(row)
                if decision is not None:
                    tx.exec(INSERT_DECISION, decision)
                if remembers and group and event.id.startswith("otel-") and (event.response_id or event.trace_id):
                    call_ids.remember_claims(tx, event.id, group)  # a gateway event may supersede it later
                deltas += [_delta(c, spent=int(event.cost_nano)) for c in group]
            if summed:
                for sql, sums_rows in rollups.batch_upserts(written):
                    tx.many(sql, sums_rows)
            if deltas:
                tx.many(_ADD_COUNTERS, deltas)
            sums = self._window_sums(tx, distinct) if distinct else []
            return tuple(inserted), tuple(_state(c, s) for c, s in zip(distinct, sums, strict=True))

        return self._call_write(body)


def _delta(claim: BudgetClaim, *, spent: int = 0, reserved: int = 0, calls: int = 0,
           concurrent: int = 0) -> Row:  # fmt: skip
    """Parameters of `_ADD_COUNTERS` for one claim's row."""
    return (claim.budget, claim.partition, claim.bucket, spent, reserved, calls, concurrent)


