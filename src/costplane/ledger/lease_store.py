"""The shared store's side of lease-based budgets (ledger/leases.py): carve, apply, give back, expire.

A lease (table `budget_leases`, schema v16) is a slice of one hard budget window's headroom held by
one serving process. It sits in the shared counters exactly like a reservation: its `held_nano` is
part of `reserved_nano` of the counter row `bucket`. So the limit check every writer already runs
under the (budget, partition) lock — spend + reservations (+ leases) + this claim ≤ limit — counts
every lease of every process, and nothing else needs to know about leases:

* `take_lease` carves (or grows) a lease under that lock: at most `remaining // share` (so one
  process never takes the whole rest of a window), nothing when that is less than `minimum`
  (near the limit the process falls back to one reservation per request);
* `apply_leased` applies a batch of settlements admitted from leases, in ONE transaction (which
  also renews the process's leases and reads its windows back, so a batch costs one transaction): each
  event inserted (idempotent by id: a replayed journal applies nothing twice) with its decision,
  its cost added as spent and one call counted on each claim, and moved from the lease's held
  headroom (what the lease still holds, if it is still open) — so spend + held never grows; the
  request's reservation row is written closed (settled, released or expired), so a repeated or late
  settle of it is the store's own `settle` from then on (a no-op, or the late spend recorded);
* `return_lease` gives unused headroom back, `expire_leases` releases the leases of processes that
  stopped renewing them (their rows deleted, their held headroom given back).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from costplane.ledger import codec, rollups
from costplane.ledger.queries import INSERT_DECISION, Row, Tx, insert_sql
from costplane.ledger.types import BudgetClaim, ClaimState, CostEvent, DecisionRecord, Reservation, ReservationStatus

__all__ = ["LeaseQueries", "LeasedRecord"]

T = TypeVar("T")

_INSERT_CLOSED = insert_sql("reservations", codec.RESERVATION_COLUMNS, " ON CONFLICT (id) DO NOTHING")
_SELECT_LEASE = 'SELECT id, budget, "partition", bucket, held_nano FROM budget_leases'
_ADD = (
    'INSERT INTO budget_counters (budget, "partition", bucket, spent_nano, reserved_nano, calls, concurrent)'
    ' VALUES (?, ?, ?, ?, ?, ?, 0) ON CONFLICT (budget, "partition", bucket) DO UPDATE SET'
    " spent_nano = budget_counters.spent_nano + excluded.spent_nano,"
    " reserved_nano = budget_counters.reserved_nano + excluded.reserved_nano,"
    " calls = budget_counters.calls + excluded.calls"
)


@dataclass(frozen=True, slots=True)
class LeasedRecord:
    """One request admitted from leases, as the journal keeps it: settled (`event` set) or released
    (`event` None: only its decision is written). `leases[i]` is the lease `claims[i]` was carved
    from (None: a claim that needs no headroom — soft or without a dollar limit). `reservation`, when
    set, is written as a closed reservation row (status `settled`, or `closed_as` without an event)."""

    decision: DecisionRecord | None
    claims: tuple[BudgetClaim, ...]
    leases: tuple[str | None, ...]
    event: CostEvent | None = None
    reservation: Reservation | None = None
    closed_as: str = ReservationStatus.RELEASED


class LeaseQueries(ABC):
    """Lease operations of the SQL stores (SQLite, PostgreSQL)."""

    @abstractmethod
    def _write(self, body: Callable[[Tx], T]) -> T: ...

    @abstractmethod
    def _call_write(self, body: Callable[[Tx], T]) -> T: ...

    @abstractmethod
    def _read(self, body: Callable[[Tx], T]) -> T: ...

    @abstractmethod
    def _lock_partitions(self, tx: Tx, keys: Sequence[tuple[str, str]]) -> None: ...

    @abstractmethod
    def _window_sums(self, tx: Tx, claims: Sequence[BudgetClaim]) -> list[tuple[int, int, int, int]]: ...

    @abstractmethod
    def _batch_inserts(self, events: Sequence[CostEvent]) -> tuple[list[tuple[str, Row]], bool]: ...

    @abstractmethod
    def _reconcile_many(self, tx: Tx, events: Sequence[CostEvent]) -> None: ...

    def take_lease(self, lease_id: str, owner: str, claim: BudgetClaim, want_nano: int, minimum_nano: int,
                   expires_at: datetime, *, share: int = 4, existing: bool = False) -> tuple[int, ClaimState]:
        """Carve up to `want_nano` of `claim`'s window headroom into lease `lease_id` (grown when it
        exists): granted = min(want, remaining // share), or 0 when that is under `minimum_nano`.
        Returns (granted, the window's state after); granted is -1 when the lease was `existing`
        and its row is gone (it expired: its headroom went back to the pool)."""
        from costplane.ledger.base import _state

        if claim.limit_nano is None:
            raise ValueError(f"budget {claim.budget!r}: a lease needs a dollar limit")

        def body(tx: Tx) -> tuple[int, ClaimState]:
            self._lock_partitions(tx, [(claim.budget, claim.partition)])
            (spent, reserved, calls, conc), = self._window_sums(tx, [claim])
            remaining = int(claim.limit_nano or 0) - spent - reserved
            granted = min(int(want_nano), max(0, remaining) // max(1, share))
            if granted < minimum_nano:
                granted = 0
            if existing:
                row = tx.one("SELECT held_nano FROM budget_leases WHERE id = ?", (lease_id,))
                if row is None:  # expired and given back: this lease is gone
                    return -1, _state(claim, (spent, reserved, calls, conc))
                tx.exec("UPDATE budget_leases SET held_nano = held_nano + ?, expires_at = ? WHERE id = ?",
                        (granted, codec.to_us(expires_at), lease_id))
            elif granted:
                tx.exec('INSERT INTO budget_leases (id, owner, budget, "partition", bucket, window_start, held_nano,'
                        " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (lease_id, owner, claim.budget, claim.partition, claim.bucket, claim.window_start, granted,
                         codec.to_us(expires_at)))
            if granted:
                tx.exec(_ADD, (claim.budget, claim.partition, claim.bucket, 0, granted, 0))
            return granted, _state(claim, (spent, reserved + granted, calls, conc))

        return self._call_write(body)

    def apply_leased(self, records: Sequence[LeasedRecord], renew: Sequence[tuple[str, datetime]] = (),
                     read_back: Sequence[BudgetClaim] = ()) -> tuple[set[str], tuple[ClaimState, ...]]:
        """Apply a batch of leased settlements and releases in ONE transaction, move the expiry of
        the leases in `renew`, and read the windows of `read_back` as that transaction leaves them.
        Returns the ids in `renew` whose lease no longer exists (expired), and the states read.

        The budget locks come first, as in every other ledger write (an event's INSERT updates the
        spend rollups' rows: taking the budget locks after it could deadlock with a settlement).
        Events and decisions are then written a statement per kind for the whole batch (an event
        already stored — a replayed journal — is skipped with its decision), with the batch's
        rollup sums (schema v17) and one reconcile probe for all of its calls."""
        batch, summed = self._batch_inserts([r.event for r in records if r.event is not None])
        found = iter(batch)
        inserts = [None if r.event is None else next(found) for r in records]
        keys = sorted({(c.budget, c.partition) for r in records for c in r.claims})
        lease_ids = sorted({lid for r in records for lid in r.leases if lid is not None} | {lid for lid, _ in renew})
        from costplane.ledger.base import _state

        def body(tx: Tx) -> tuple[set[str], tuple[ClaimState, ...]]:
            self._lock_partitions(tx, keys)
            stored = _stored_events(tx, [r.event.id for r in records if r.event is not None])
            closed = [_closed_row(r.reservation, r) for r in records if r.reservation is not None]
            if closed:  # a replayed journal finds its rows there already
                tx.many(_INSERT_CLOSED, closed)
            fresh: list[LeasedRecord] = []
            rows: dict[str, list[Row]] = {}
            decisions: list[Row] = []
            for record, insert in zip(records, inserts, strict=True):
                if record.event is not None and insert is not None:
                    if record.event.id in stored:
                        continue
                    stored.add(record.event.id)
                    rows.setdefault(insert[0], []).append(insert[1])
                    fresh.append(record)
                if record.decision is not None:
                    decisions.append(codec.decision_to_row(record.decision))
            for sql, written in rows.items():
                tx.many(sql, written)
                if summed:
                    for sums_sql, sums_rows in rollups.batch_upserts(written):
                        tx.many(sums_sql, sums_rows)
            if decisions:
                tx.many(INSERT_DECISION, decisions)
            self._reconcile_many(tx, [record.event for record in fresh if record.event is not None])
            held = _leases(tx, lease_ids)
            counters: dict[tuple[str, str, int], list[int]] = {}  # row -> [spent, reserved, calls]
            for record in fresh:
                cost = int(record.event.cost_nano) if record.event is not None else 0
                for claim, lease_id in zip(record.claims, record.leases, strict=True):
                    row = counters.setdefault((claim.budget, claim.partition, claim.bucket), [0, 0, 0])
                    row[0] += cost
                    row[2] += 1
                    lease = held.get(lease_id) if lease_id is not None else None
                    if lease is not None and cost:
                        moved = min(cost, lease[1])
                        lease[1] -= moved
                        counters.setdefault(lease[0], [0, 0, 0])[1] -= moved
            if counters:
                tx.many(_ADD, [(b, p, k, s, r, n) for (b, p, k), (s, r, n) in sorted(counters.items())])
            changed = [(lease[1], lid) for lid, lease in held.items() if lease[1] != lease[2]]
            if changed:
                tx.many("UPDATE budget_leases SET held_nano = ? WHERE id = ?", changed)
            if renew:
                tx.many("UPDATE budget_leases SET expires_at = ? WHERE id = ?",
                        [(codec.to_us(at), lid) for lid, at in renew])
            sums = self._window_sums(tx, read_back) if read_back else []
            return ({lid for lid, _ in renew if lid not in held},
                    tuple(_state(c, s) for c, s in zip(read_back, sums, strict=True)))

        return self._call_write(body)

    def promote_leased(self, reservation: Reservation, decision: DecisionRecord,
                       leases: Sequence[str | None]) -> None:
        """Turn a request admitted from leases into a store reservation (its amounts moved from the
        leases to the reservation, in one transaction: the window's total does not change), for
        operations only a store reservation has (grow, accrue)."""
        from costplane.ledger.base import _ADD_COUNTERS, _delta, partition_keys

        res_row = codec.reservation_to_row(reservation)
        res_row = (res_row[0], ReservationStatus.OPEN, *res_row[2:])
        ids = sorted({lid for lid in leases if lid is not None})

        def body(tx: Tx) -> None:
            self._lock_partitions(tx, partition_keys(reservation.claims))
            held = _leases(tx, ids)
            deltas: list[Row] = []
            for claim, lease_id in zip(reservation.claims, leases, strict=True):
                lease = held.get(lease_id) if lease_id is not None else None
                if lease is not None:
                    moved = min(claim.amount_nano, lease[1])
                    lease[1] -= moved
                    deltas.append((*lease[0], 0, -moved, 0, 0))
                deltas.append(_delta(claim, reserved=claim.amount_nano, calls=1, concurrent=1))
            tx.many(_ADD_COUNTERS, deltas)
            changed = [(lease[1], lid) for lid, lease in held.items() if lease[1] != lease[2]]
            if changed:
                tx.many("UPDATE budget_leases SET held_nano = ? WHERE id = ?", changed)
            tx.exec(insert_sql("reservations", codec.RESERVATION_COLUMNS), res_row)
            tx.exec(INSERT_DECISION, codec.decision_to_row(decision))

        self._call_write(body)

    def return_lease(self, lease_id: str, amount_nano: int | None = None) -> int:
        """Give back `amount_nano` of a lease's held headroom (None: all of it, and end the lease).
        Returns what was given back (never more than the lease holds)."""

        def body(tx: Tx) -> int:
            row = tx.one(f"{_SELECT_LEASE} WHERE id = ?", (lease_id,))
            if row is None:
                return 0
            _, budget, partition, bucket, held = row
            self._lock_partitions(tx, [(str(budget), str(partition))])
            back = int(held) if amount_nano is None else max(0, min(int(amount_nano), int(held)))
            if amount_nano is None:
                tx.exec("DELETE FROM budget_leases WHERE id = ?", (lease_id,))
            elif back:
                tx.exec("UPDATE budget_leases SET held_nano = held_nano - ? WHERE id = ?", (back, lease_id))
            if back:
                tx.exec(_ADD, (budget, partition, int(bucket), 0, -back, 0))
            return back

        return self._call_write(body)

    def end_leases_of(self, owner: str) -> int:
        """End every lease of `owner` (a process whose journal was just replayed); returns how many."""
        ids = self._read(lambda tx: tx.all("SELECT id FROM budget_leases WHERE owner = ?", (owner,)))
        return sum(1 for (lid,) in ids if self.return_lease(str(lid)) or True)

    def expire_leases(self, now: datetime) -> int:
        """End every lease whose expiry has passed (its process stopped renewing it): its held
        headroom goes back to the pool. Returns how many."""
        due = self._read(lambda tx: tx.all("SELECT id FROM budget_leases WHERE expires_at <= ? ORDER BY expires_at",
                                           (codec.to_us(now),)))

        def end(lease_id: str) -> bool:
            def body(tx: Tx) -> bool:
                row = tx.one(f"{_SELECT_LEASE} WHERE id = ? AND expires_at <= ?", (lease_id, codec.to_us(now)))
                if row is None:  # renewed meanwhile
                    return False
                self._lock_partitions(tx, [(str(row[1]), str(row[2]))])
                tx.exec("DELETE FROM budget_leases WHERE id = ?", (lease_id,))
                if int(row[4]):
                    tx.exec(_ADD, (row[1], row[2], int(row[3]), 0, -int(row[4]), 0))
                return True

            return self._write(body)

        return sum(1 for (lid,) in due if end(str(lid)))

    def leases_held(self, owner: str | None = None) -> dict[tuple[str, str], int]:
        """Headroom held by open leases (of `owner`, or everyone's), per (budget, partition)."""
        where, params = ("WHERE owner = ? ", (owner,)) if owner is not None else ("", ())
        rows = self._read(lambda tx: tx.all('SELECT budget, "partition", SUM(held_nano) FROM budget_leases'
                                            f' {where}GROUP BY budget, "partition"', params))
        return {(str(b), str(p)): int(n) for b, p, n in rows}


def _closed_row(reservation: Reservation, record: LeasedRecord) -> Row:
    row = codec.reservation_to_row(reservation)
    status = ReservationStatus.SETTLED if record.event is not None else record.closed_as
    return (row[0], status, *row[2:])


def _stored_events(tx: Tx, ids: Sequence[str]) -> set[str]:
    """Which of these event ids the store already holds."""
    out: set[str] = set()
    for start in range(0, len(ids), 400):
        part = ids[start:start + 400]
        marks = ", ".join("?" for _ in part)
        out |= {str(r[0]) for r in tx.all(f"SELECT id FROM cost_events WHERE id IN ({marks})", part)}
    return out


def _leases(tx: Tx, ids: Sequence[str]) -> dict[str, list[Any]]:
    """lease id -> [(budget, partition, bucket), held now, held before] of the leases that exist."""
    out: dict[str, list[Any]] = {}
    for start in range(0, len(ids), 400):
        part = ids[start:start + 400]
        marks = ", ".join("?" for _ in part)
        for lid, budget, partition, bucket, held in tx.all(f"{_SELECT_LEASE} WHERE id IN ({marks})", part):
            out[str(lid)] = [(str(budget), str(partition), int(bucket)), int(held), int(held)]
    return out
