"""The budget ledger in memory: `BudgetLedger` with exactly the SQL stores' counters, in one process.

It is what policy replay decides against (a fresh ledger, the recorded clock), and a reference
implementation of the contract: the differential test runs the same random operation sequences
against it, SQLite and PostgreSQL and compares every result and counter.

The counters are the SQL stores' table in dictionaries: one row per (budget, partition, bucket)
holding spent, reserved, calls and concurrent; a claim's window is the sum of the rows of its
(budget, partition) with bucket >= window_start. Every change is "add this delta to the row" with
the deltas built by the same function as the SQL stores' (`base._delta`), and the states returned
are built by the same `base._state`. The rules of each operation are those of `base.SqlStore`
(reserve, settle, release, expire, record_event, record_spend) and `envqueries.EnvQueries`
(accrue, grow_reservation):

* reserve: all claims or none; a hard claim refuses when its window, with this claim (and any
  earlier claim of the same reservation on the same window) added, breaks its amount, calls or
  concurrent limit; a refusal writes nothing (not even the decision);
* settle: idempotent by event id; settling a released or expired reservation still records its
  spend and counts its call again; an unknown reservation is a `StoreError`;
* record_spend: spend observed after the fact is added even past a limit;
* events are kept by id (a second event with the same id is ignored) with what the loop guard
  counts (run, request hash, time); decisions are kept by id, first one wins.

An environment id given to `accrue` is accepted and ignored: this ledger keeps no environments. Nor
does it link the same call seen twice (the SQL stores' call ids, `ledger/calls.py`): an event's
response and trace ids are not read, so a gateway event never supersedes an earlier OTLP/SDK event
here (policy replay records no such events).
Times are compared in whole microseconds, as the SQL stores store them. One lock serialises every
operation, so threads see each operation as atomic.
"""

from __future__ import annotations

import bisect
import dataclasses
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from costplane.ledger.base import Row, Sums, _delta, _state, admit_claims
from costplane.ledger.codec import from_us, to_us
from costplane.ledger.store import StoreError
from costplane.ledger.types import (
    BudgetClaim,
    ClaimState,
    CostEvent,
    DecisionRecord,
    Reservation,
    ReservationStatus,
    ReserveResult,
)

__all__ = ["MemoryLedger"]

_CLOSED = (ReservationStatus.RELEASED, ReservationStatus.EXPIRED)


@dataclass(slots=True)
class _Held:
    """A reservation as the ledger keeps it (the SQL row: claims and status change in place)."""

    reservation: Reservation
    claims: tuple[BudgetClaim, ...]
    status: str
    expires_us: int


class _Partition:
    """The counter rows of one (budget, partition): buckets kept sorted, so a window's sum reads only
    the rows at or after its start."""

    __slots__ = ("buckets", "rows")

    def __init__(self) -> None:
        self.buckets: list[int] = []
        self.rows: dict[int, list[int]] = {}

    def add(self, bucket: int, delta: Sequence[int]) -> None:
        row = self.rows.get(bucket)
        if row is None:
            row = self.rows[bucket] = [0, 0, 0, 0]
            if not self.buckets or bucket > self.buckets[-1]:
                self.buckets.append(bucket)
            else:
                bisect.insort(self.buckets, bucket)
        for i in range(4):
            row[i] += delta[i]

    def sums(self, window_start: int) -> Sums:
        spent = reserved = calls = concurrent = 0
        rows = self.rows
        for bucket in self.buckets[bisect.bisect_left(self.buckets, window_start):]:
            row = rows[bucket]
            spent += row[0]
            reserved += row[1]
            calls += row[2]
            concurrent += row[3]
        return spent, reserved, calls, concurrent


class MemoryLedger:
    """`BudgetLedger` in memory (see the module docstring). `keep_decisions=False` counts the
    decisions logged without keeping them; `forget_settled=True` drops a reservation once it is
    settled (settlement is final: settling it again is then an unknown reservation, and
    `get_reservation` no longer finds it) — for a long replay, whose memory then stays flat."""

    def __init__(self, *, keep_decisions: bool = True, forget_settled: bool = False) -> None:
        self._forget_settled = forget_settled
        self._lock = threading.Lock()
        self._partitions: dict[tuple[str, str], _Partition] = {}
        self._reservations: dict[str, _Held] = {}
        self._event_ids: set[str] = set()
        self._requests: dict[tuple[str, str], list[int]] = {}  # (run, request hash) -> event times (us)
        self._keep_decisions = keep_decisions
        self._decisions: dict[str, DecisionRecord] = {}
        self._decision_ids: set[str] = set()

    # -- counters ---------------------------------------------------------------------------
    def _add(self, deltas: Iterable[Row]) -> None:
        """`_ADD_COUNTERS` of the SQL stores, for rows built by `base._delta`."""
        for budget, partition, bucket, *delta in deltas:
            key = (budget, partition)
            part = self._partitions.get(key)
            if part is None:
                part = self._partitions[key] = _Partition()
            part.add(bucket, delta)

    def _sums(self, claim: BudgetClaim) -> Sums:
        part = self._partitions.get((claim.budget, claim.partition))
        return (0, 0, 0, 0) if part is None else part.sums(claim.window_start)

    def _states(self, claims: Sequence[BudgetClaim]) -> tuple[ClaimState, ...]:
        return tuple(_state(c, self._sums(c)) for c in claims)

    # -- records ----------------------------------------------------------------------------
    def _insert_event(self, event: CostEvent) -> bool:
        """The event insert, ignored for an id already stored (ON CONFLICT DO NOTHING)."""
        if event.id in self._event_ids:
            return False
        self._event_ids.add(event.id)
        run, request_hash = event.context.run, event.request_hash
        if run is not None and request_hash is not None:
            times = self._requests.setdefault((run, request_hash), [])
            ts = to_us(event.ts)
            if not times or ts >= times[-1]:
                times.append(ts)
            else:
                bisect.insort(times, ts)
        return True

    def _insert_decision(self, decision: DecisionRecord) -> None:
        if decision.id in self._decision_ids:
            return
        self._decision_ids.add(decision.id)
        if self._keep_decisions:
            self._decisions[decision.id] = decision

    def _held(self, reservation_id: str) -> _Held:
        held = self._reservations.get(reservation_id)
        if held is None:
            raise StoreError(f"unknown reservation {reservation_id!r}")
        return held

    # -- BudgetLedger -------------------------------------------------------------------------
    def reserve(self, reservation: Reservation, decision: DecisionRecord) -> ReserveResult:
        claims = reservation.claims
        with self._lock:
            if reservation.id in self._reservations:
                raise StoreError(f"reservation {reservation.id!r} already exists")
            states = admit_claims(claims, [self._sums(claim) for claim in claims])
            if isinstance(states, ReserveResult):
                return states
            self._add(_delta(c, reserved=c.amount_nano, calls=1, concurrent=1) for c in claims)
            if reservation.status != ReservationStatus.OPEN:
                reservation = dataclasses.replace(reservation, status=ReservationStatus.OPEN)
            self._reservations[reservation.id] = _Held(reservation, tuple(claims), ReservationStatus.OPEN,
                                                       to_us(reservation.expires_at))
            self._insert_decision(decision)
            return ReserveResult(ok=True, states=tuple(states))

    def settle(self, reservation_id: str, event: CostEvent) -> tuple[ClaimState, ...]:
        with self._lock:
            held = self._held(reservation_id)
            prior, held.status = held.status, ReservationStatus.SETTLED
            claims = held.claims
            cost = int(event.cost_nano) if self._insert_event(event) else 0
            if prior == ReservationStatus.OPEN:
                self._add(_delta(c, spent=cost, reserved=-c.amount_nano, concurrent=-1) for c in claims)
            elif cost:  # released/expired earlier: the call (given back then) and its money count again
                call = 1 if prior in _CLOSED else 0
                self._add(_delta(c, spent=cost, calls=call) for c in claims)
            if self._forget_settled:
                del self._reservations[reservation_id]
            return self._states(claims)

    def release(self, reservation_id: str, status: str = ReservationStatus.RELEASED) -> bool:
        if status not in _CLOSED:
            raise ValueError(f"release status must be 'released' or 'expired', got {status!r}")
        with self._lock:
            return self._release(reservation_id, status)

    def _release(self, reservation_id: str, status: str) -> bool:
        held = self._reservations.get(reservation_id)
        if held is None or held.status != ReservationStatus.OPEN:
            return False
        held.status = status
        self._add(_delta(c, reserved=-c.amount_nano, calls=-1, concurrent=-1) for c in held.claims)
        return True

    def grow_reservation(self, reservation_id: str, extra_nano: int, expires_at: datetime,
                         decision: DecisionRecord | None = None) -> ReserveResult:
        if extra_nano < 0:
            raise ValueError(f"extra_nano must be >= 0, got {extra_nano}")
        with self._lock:
            held = self._held(reservation_id)
            if held.status != ReservationStatus.OPEN:
                raise StoreError(f"reservation {reservation_id!r} is {held.status}, not open")
            claims = held.claims
            states: list[ClaimState] = []
            for claim in claims:
                spent, reserved, calls, conc = self._sums(claim)
                state = _state(claim, (spent, reserved + extra_nano, calls, conc))
                if (claim.hard and extra_nano and claim.limit_nano is not None
                        and spent + reserved + extra_nano > claim.limit_nano):
                    return ReserveResult(ok=False, refused=state, refused_limit="amount")
                states.append(state)
            if extra_nano:
                self._add(_delta(c, reserved=extra_nano) for c in claims)
            held.claims = tuple(dataclasses.replace(c, amount_nano=c.amount_nano + extra_nano) for c in claims)
            held.expires_us = to_us(expires_at)
            if decision is not None:
                self._insert_decision(decision)
            return ReserveResult(ok=True, states=tuple(states))

    def accrue(self, reservation_id: str, event: CostEvent, *, close: bool = False,
               environment_id: str | None = None, accrued_until: datetime | None = None,
               decision: DecisionRecord | None = None) -> tuple[ClaimState, ...]:
        with self._lock:
            held = self._held(reservation_id)
            status = held.status
            inserted = self._insert_event(event)
            cost = int(event.cost_nano) if inserted else 0
            if inserted and decision is not None:
                self._insert_decision(decision)
            deltas: list[Row] = []
            kept: list[BudgetClaim] = []
            for claim in held.claims:
                if status != ReservationStatus.OPEN:
                    deltas.append(_delta(claim, spent=cost))
                    kept.append(claim)
                    continue
                moved = min(cost, claim.amount_nano)
                back = claim.amount_nano - moved if close else 0
                deltas.append(_delta(claim, spent=cost, reserved=-(moved + back), concurrent=-1 if close else 0))
                kept.append(dataclasses.replace(claim, amount_nano=claim.amount_nano - moved - back))
            if cost or close:
                self._add(d for d in deltas if any(d[3:]))
            if status == ReservationStatus.OPEN:
                held.claims = tuple(kept)
                held.status = ReservationStatus.SETTLED if close else ReservationStatus.OPEN
                if close and self._forget_settled:
                    del self._reservations[reservation_id]
            return self._states(kept)

    def expire_reservations(self, now: datetime) -> int:
        cutoff = to_us(now)
        with self._lock:
            due = sorted((h.expires_us, rid) for rid, h in self._reservations.items()
                         if h.status == ReservationStatus.OPEN and h.expires_us <= cutoff)
            return sum(1 for _, rid in due if self._release(rid, ReservationStatus.EXPIRED))

    def record_event(self, event: CostEvent, claims: Sequence[BudgetClaim] = ()) -> bool:
        with self._lock:
            if not self._insert_event(event):
                return False
            self._add(_delta(c, spent=int(event.cost_nano)) for c in claims)
            return True

    def record_spend(self, events: Sequence[CostEvent], claims: Sequence[Sequence[BudgetClaim]],
                     decisions: Sequence[DecisionRecord | None]) -> tuple[tuple[bool, ...], tuple[ClaimState, ...]]:
        windows: dict[tuple[str, str, int], BudgetClaim] = {}
        for group in claims:
            for claim in group:
                windows.setdefault((claim.budget, claim.partition, claim.window_start), claim)
        with self._lock:
            inserted: list[bool] = []
            for event, group, decision in zip(events, claims, decisions, strict=True):
                new = self._insert_event(event)
                inserted.append(new)
                if not new:
                    continue
                if decision is not None:
                    self._insert_decision(decision)
                self._add(_delta(c, spent=int(event.cost_nano)) for c in group)
            return tuple(inserted), self._states(list(windows.values()))

    def claim_states(self, claims: Sequence[BudgetClaim]) -> tuple[ClaimState, ...]:
        with self._lock:
            return self._states(claims)

    def record_decision(self, decision: DecisionRecord) -> None:
        with self._lock:
            self._insert_decision(decision)

    def count_recent_requests(self, run: str, request_hash: str, since: datetime) -> int:
        with self._lock:
            times = self._requests.get((run, request_hash))
            return 0 if not times else len(times) - bisect.bisect_left(times, to_us(since))

    # -- reads beyond the contract (tests, replay) -----------------------------------------------
    def open_reservations(self) -> int:
        with self._lock:
            return sum(1 for h in self._reservations.values() if h.status == ReservationStatus.OPEN)

    def get_reservation(self, reservation_id: str) -> Reservation | None:
        """The reservation as the SQL stores read it back: its current claims, status and expiry."""
        with self._lock:
            held = self._reservations.get(reservation_id)
            if held is None:
                return None
            return dataclasses.replace(held.reservation, claims=held.claims, status=held.status,
                                       expires_at=from_us(held.expires_us))

    def count_events(self) -> int:
        with self._lock:
            return len(self._event_ids)

    def count_decisions(self) -> int:
        with self._lock:
            return len(self._decision_ids)

    def get_decision(self, decision_id: str) -> DecisionRecord | None:
        """A decision logged here (None when unknown, or when decisions are not kept)."""
        with self._lock:
            return self._decisions.get(decision_id)

    def pop_decision(self, decision_id: str) -> DecisionRecord | None:
        """A decision logged here, no longer kept (its id still counts as logged): a long replay reads
        each decision once and memory stays flat."""
        with self._lock:
            return self._decisions.pop(decision_id, None)

    def counter_rows(self) -> dict[tuple[str, str, int], tuple[int, int, int, int]]:
        """Every counter row: (budget, partition, bucket) -> (spent, reserved, calls, concurrent)."""
        with self._lock:
            return {(b, p, bucket): (row[0], row[1], row[2], row[3])
                    for (b, p), part in self._partitions.items() for bucket, row in part.rows.items()}
