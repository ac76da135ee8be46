"""Lease-based budgets: admit requests in memory against leases carved from the shared counters.

`LeasedLedger` is a `BudgetLedger` over a SQL store (ledger/lease_store.py holds the store's side).
For each hard budget window a request claims, the process holds a **lease** — headroom taken from
the shared counters under the window's lock and held there like a reservation — and admits the
request by subtracting its worst-case amount from the lease's free headroom, in memory, without a
store round trip. So, on any number of processes, **spend + open reservations + outstanding leases
never exceed a hard limit**: every lease was limit-checked when it was carved, and a request is only
admitted inside a lease it fits.

* **Settle / release**: the record (event, decision, claims, leases) is appended to the process's
  local journal (ledger/journal.py: one `write`, it survives kill -9) before the call returns, then
  applied to the store in batches by a background writer (`flush`), which moves each settled cost
  from its lease's held headroom to spent and counts the call. The writer wakes every
  `flush_interval` and applies once `batch_records` are pending or the oldest has waited
  `batch_wait` intervals (64 records, 0.25 s by default).
* **Only hot windows are leased**: a window gets a lease once it is asked for four times within a
  second (a run's own budget or a quiet team stays on the direct path: a lease would cost more
  round trips than it saves). Windows that hold nothing are forgotten after a minute unused.
* **Lease size** follows demand and headroom: a top-up asks for about two seconds of the window's
  recent admitted amounts (at least 8 requests' worth) and gets at most a quarter of what remains;
  under two requests' worth, nothing — near its limit a window goes back to one store reservation
  per request (the exact, direct path) for a second at a time, and the process gives back its free
  headroom of that window so others' reservations can use it. Idle leases are given back. The
  writer grows a busy lease **ahead of need** (`refill`, every interval): once less than half a
  horizon of its recent demand is free (and at least four admissions' worth), so a steady stream of
  requests finds its lease never empty and no request waits on the store — nor on a lock another
  process holds there — while headroom remains; a request tops a lease up itself only when demand
  outruns the writer.
* **Expiry**: a lease expires `ttl` after its last renewal (the writer renews it at every quarter of
  the TTL). A process admits from a lease only while more than half its TTL is left, so a live
  process never uses headroom that may already have gone back. Leases of a dead process return to
  the pool after at most `ttl` (or at once, when a sibling replays its journal).
* **Recovery**: the journals of dead processes (start-up: this host's earlier runs too) are
  replayed (`recover`) before any lease is expired by this process; events are idempotent by id.
* **Long-running reservations** (environments): `grow_reservation` or `accrue` of a request
  admitted from leases first turns it into a store reservation (`promote_leased`: its amounts
  moved from the leases to the reservation in one transaction), then runs on the store.
* **Calls-per-window and concurrency limits stay on the direct path**: a request with a claim that
  has either limit is reserved in the store as before (a lease of calls could not be exact for
  concurrency). Soft claims and claims without a dollar limit need no headroom: their spend is
  added when the batch is applied.

The `BudgetLedger` contract holds (its conformance suite runs on this ledger): a repeated settle is
a no-op and a settle after a release or expiry records the spend — each applied record writes the
request's closed reservation row, and such a settle applies this process's journal first, then is
the store's. `claim_states` is exact for this process's own requests: its admissions from memory
are reserved (a call and a concurrent one each), the free headroom of its own leases is room (not
reserved), other processes' leases count as reserved whole (never more room than exists). Other
processes see this process's counters once its writer applies the journal. States returned by a
leased admission or settlement are the window as last read plus this process's own admissions and
settlements since (alerts and remaining-budget headers); the limit check itself never uses them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from costplane.ledger.base import SqlStore
from costplane.ledger.journal import Journal, orphans, read_segment
from costplane.ledger.lease_store import LeasedRecord
from costplane.ledger.lease_types import (
    Held,
    Key,
    LeaseSettings,
    LeaseWindow,
    decode_record,
    encode_record,
    needs_headroom,
    new_lease_id,
    window_key,
)
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

__all__ = ["LeaseSettings", "LeasedLedger", "decode_record", "encode_record", "loop_key"]

_log = logging.getLogger(__name__)


class LeasedLedger:
    """`BudgetLedger` with lease-based admission over a SQL store (see the module docstring)."""

    #: records applied per store transaction
    BATCH = 500
    #: a window without a lease, unused this long, is forgotten (seconds)
    FORGET_S = 60.0

    def __init__(self, store: SqlStore, settings: LeaseSettings, *, owner: str | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.store = store
        self.settings = settings
        self.owner = owner or f"p{uuid.uuid4().hex[:16]}"
        self._clock = clock or (lambda: datetime.now(UTC))
        self._journal = Journal(settings.journal_dir, self.owner, fsync=settings.fsync)
        self._lock = threading.Lock()  # memory state and journal order
        self._acquire = threading.Lock()  # one top-up at a time
        self._flushing = threading.Lock()
        self._windows: dict[Key, LeaseWindow] = {}
        self._held: dict[str, Held] = {}
        self._pending: list[LeasedRecord] = []
        self._pending_since = 0.0  # when the oldest pending record was settled (monotonic)
        self._closing: set[str] = set()  # admissions settled or released here, their records not yet applied
        self._retry: list[tuple[list[LeasedRecord], Path | None]] = []
        # the loop guard's view of what is settled here and not yet applied: (run, request hash) -> times
        self._unapplied_calls: dict[tuple[str, str], list[datetime]] = {}
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self.round_trips = 0  # store transactions of the leased path (takes, batches, give-backs)
        self.leased = 0  # requests admitted from a lease
        self.direct = 0  # requests reserved in the store (near a limit, calls/concurrency limits)
        self.top_ups = 0  # leases carved or grown on a request's path (it waited for the store)
        self.refills = 0  # leases grown ahead of need by the writer

    # -- admission ---------------------------------------------------------------------------
    def reserve(self, reservation: Reservation, decision: DecisionRecord) -> ReserveResult:
        claims = reservation.claims
        if not claims or any(c.limit_calls is not None or c.limit_concurrent is not None for c in claims):
            return self._direct(reservation, decision)
        for attempt in range(2):
            now = time.monotonic()
            with self._lock:
                admitted = self._carve(reservation, decision, now)
                hot = admitted is None and attempt == 0 and self._hot(claims, now)
            if admitted is not None:
                self._ensure_writer()
                return admitted
            if not hot or not self._top_up(claims):
                break
        return self._direct(reservation, decision)

    def _hot(self, claims: Sequence[BudgetClaim], now: float) -> bool:
        """Count this request against its windows; True when every one holds a lease or has asked
        `hot_per_second` times within a second. A cold window (a run's own budget, a quiet team) stays on the
        direct path: a lease there would cost a store round trip for a request or two."""
        hot = True
        for key, (claim, _) in self._amounts(claims).items():
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = LeaseWindow(claim, now)
            if now - window.arrivals_since > 1.0:
                window.arrivals, window.arrivals_since = 0, now
            window.arrivals += 1
            window.last_used = now
            hot = hot and (window.lease_id is not None or window.arrivals >= self.settings.hot_per_second)
        return hot

    def _direct(self, reservation: Reservation, decision: DecisionRecord) -> ReserveResult:
        self.direct += 1
        result = self.store.reserve(reservation, decision)
        if self._room_held(result):  # this process's own free headroom stood in the way: give it back, retry
            result = self.store.reserve(reservation, decision)
        return self._result(reservation.claims, result)

    def _room_held(self, result: ReserveResult) -> bool:
        """After a refusal on amount: give back this process's free headroom in the refused budget
        partition (every window of it: a rolling window's lease of an earlier minute included);
        True when there was some, so the request is retried (the contract refuses only when
        spend and reservations leave no room, and this process's free headroom is room)."""
        refused = result.refused
        if result.ok or refused is None or result.refused_limit != "amount":
            return False
        with self._lock:
            free = [(w.lease_id, w.free, w) for w in self._windows.values() if w.lease_id is not None and w.free > 0
                    and (w.claim.budget, w.claim.partition) == (refused.budget, refused.partition)]
            for _, amount, window in free:
                window.free -= amount
                window.direct_until = time.monotonic() + 1.0
        given = 0
        for lease_id, amount, window in free:
            if lease_id is not None:
                self.round_trips += 1
                back = self.store.return_lease(lease_id, amount)
                given += back
                with self._lock:
                    if window.lease_id == lease_id:
                        window.held = max(0, window.held - back)
        return given > 0

    def _amounts(self, claims: Sequence[BudgetClaim]) -> dict[Key, tuple[BudgetClaim, int]]:
        """The headroom a request needs per window (two claims on one window add up)."""
        need: dict[Key, tuple[BudgetClaim, int]] = {}
        for claim in claims:
            if needs_headroom(claim):
                first, amount = need.get(window_key(claim), (claim, 0))
                need[window_key(claim)] = (first, amount + claim.amount_nano)
        return need

    def _usable(self, window: LeaseWindow | None, amount: int, now: float) -> bool:
        return (window is not None and window.lease_id is not None and window.free >= amount
                and now >= window.direct_until and window.expires - now > self.settings.ttl_seconds / 2)

    def _carve(self, reservation: Reservation, decision: DecisionRecord, now: float) -> ReserveResult | None:
        need = self._amounts(reservation.claims)
        if not all(self._usable(self._windows.get(key), amount, now) for key, (_, amount) in need.items()):
            return None
        carved: list[tuple[Key, str | None, int]] = []
        for key, (_, amount) in need.items():
            window = self._windows[key]
            window.free -= amount
            window.used += amount
            window.amount = amount
            window.last_used = now
            carved.append((key, window.lease_id, amount))
        for claim in reservation.claims:
            if not needs_headroom(claim):
                window = self._windows.setdefault(window_key(claim), LeaseWindow(claim, now))
                carved.append((window_key(claim), None, 0))
        held = Held(reservation, decision, carved)
        self._held[reservation.id] = held
        self._count_open(held, 1)
        self.leased += 1
        return ReserveResult(ok=True, states=tuple(self._state(c) for c in reservation.claims))

    def _want(self, window: LeaseWindow | None, amount: int, now: float) -> int:
        floor = 8 * amount
        if window is None:
            return floor
        elapsed = max(now - window.rate_since, self.settings.flush_interval)
        want = int(window.used / elapsed * self.settings.horizon_seconds)
        window.used, window.rate_since = 0, now
        return max(floor, want)

    def _top_up(self, claims: Sequence[BudgetClaim]) -> bool:
        """Carve or grow the leases the request lacks, on its own path (the writer grows a busy lease
        ahead of need, `refill`, so this is rare); False when a window is near its limit."""
        with self._acquire:
            for key, (claim, amount) in self._amounts(claims).items():
                if not self._grow(key, claim, amount, ahead=False):
                    return False
            return True

    def _low(self, window: LeaseWindow, now: float) -> bool:
        """A busy lease with less than half a horizon of its recent demand free (at least four
        admissions' worth): the writer grows it before a request finds it empty."""
        if window.lease_id is None or now < window.direct_until or now - window.last_used > self.settings.idle_seconds:
            return False
        rate = window.used / max(now - window.rate_since, self.settings.flush_interval)
        return window.free < max(rate * self.settings.horizon_seconds / 2, 4 * window.amount)

    def refill(self) -> int:
        """Grow the busy leases running low (the writer calls it every interval); returns how many
        were asked to grow. Requests keep being admitted from what is left meanwhile."""
        now = time.monotonic()
        with self._lock:
            low = [(key, w.claim, w.amount) for key, w in self._windows.items() if w.amount > 0 and self._low(w, now)]
        asked = 0
        for key, claim, amount in low:
            with self._acquire:
                asked += self._grow(key, claim, amount, ahead=True) is not None
        return asked

    def _grow(self, key: Key, claim: BudgetClaim, amount: int, *, ahead: bool) -> bool | None:
        """Carve or grow `key`'s lease by about a horizon of demand (at least 8 × `amount`); `ahead`:
        only if it is still running low. True when it is usable for `amount` after; False when the
        window is near its limit (the direct path for a second, its free headroom given back); None
        when there was nothing to do. Called under `_acquire`."""
        now = time.monotonic()
        with self._lock:
            window = self._windows.get(key)
            if ahead and (window is None or not self._low(window, now)):
                return None  # grown meanwhile (or gone): nothing to do
            if not ahead and self._usable(window, amount, now):
                return True
            if window is not None and now < window.direct_until:
                return False
            want = self._want(window, amount, now)
            existing = window is not None and window.lease_id is not None
            lease_id = window.lease_id if window is not None and window.lease_id else new_lease_id()
        lease_claim = window.claim if window is not None else claim
        expires_at = self._clock() + timedelta(seconds=self.settings.ttl_seconds)
        self.round_trips += 1
        if ahead:
            self.refills += 1
        else:
            self.top_ups += 1
        granted, state = self.store.take_lease(lease_id, self.owner, lease_claim, want, 2 * amount, expires_at,
                                               share=self.settings.share, existing=existing)
        give_back = 0
        with self._lock:
            window = self._windows.setdefault(key, LeaseWindow(lease_claim, now))
            if granted < 0:  # our lease expired (a stall past half its TTL): start a new one next time
                if window.lease_id == lease_id:
                    window.lease_id, window.free, window.held = None, 0, 0
                self._see(window, state)
                return False
            if granted:
                same = window.lease_id == lease_id
                window.free = window.free + granted if same else granted
                window.held = window.held + granted if same else granted
                window.lease_id = lease_id
                window.expires = now + self.settings.ttl_seconds
            else:
                window.direct_until = now + 1.0
                give_back, window.free = max(0, window.free), min(0, window.free)
            self._see(window, state)
        if not granted:
            if give_back and window.lease_id is not None:
                self.round_trips += 1
                back = self.store.return_lease(window.lease_id, give_back)
                with self._lock:
                    window.held = max(0, window.held - back)
                if back < give_back:  # the lease held less (expired): nothing more to give
                    _log.info("lease %s held %d of %d free nano", window.lease_id, back, give_back)
            return False
        return True

    # -- settlement ---------------------------------------------------------------------------
    def settle(self, reservation_id: str, event: CostEvent) -> tuple[ClaimState, ...]:
        """A request admitted from leases is settled in the journal. Settling it again (a retry, a
        second event) or after its release or expiry is rare: what this process journaled is applied
        first, then the store settles it against the closed reservation row the batch wrote (a no-op
        for the same event; the late spend recorded, moved off nothing held)."""
        cost = int(event.cost_nano)
        with self._lock:
            held = self._held.pop(reservation_id, None)
            if held is not None:
                record = LeasedRecord(held.decision, held.reservation.claims, self._lease_ids(held), event,
                                      held.reservation)
                seq = self._journal.append(encode_record(record))
                if not self._pending:
                    self._pending_since = time.monotonic()
                self._pending.append(record)
                self._closing.add(reservation_id)
                self._count_open(held, -1)
                pair = loop_key(event)
                if pair is not None:
                    self._unapplied_calls.setdefault(pair, []).append(event.ts)
                for key, lease_id, amount in held.carved:
                    window = self._windows.get(key)
                    if window is not None and lease_id is not None and window.lease_id == lease_id:
                        window.free += amount - cost  # (a lost lease's headroom is gone)
                for claim in held.reservation.claims:
                    window = self._windows.get(window_key(claim))
                    if window is not None:
                        window.unapplied += cost
                        window.unapplied_calls += 1
                states = tuple(self._state(c) for c in held.reservation.claims)
            closing = held is None and reservation_id in self._closing
        if held is None:
            if closing:
                self.flush()
            return self._stored(reservation_id, self.store.settle(reservation_id, event))
        self._journal.sync(seq)  # journal_fsync on: on disk before the response (one fdatasync per group)
        return states

    def release(self, reservation_id: str, status: str = ReservationStatus.RELEASED) -> bool:
        if status not in (ReservationStatus.RELEASED, ReservationStatus.EXPIRED):
            raise ValueError(f"release status must be 'released' or 'expired', got {status!r}")
        with self._lock:
            held = self._held.pop(reservation_id, None)
            if held is not None:
                record = LeasedRecord(held.decision, held.reservation.claims, self._lease_ids(held), None,
                                      held.reservation, status)
                self._journal.append(encode_record(record))
                if not self._pending:
                    self._pending_since = time.monotonic()
                self._pending.append(record)
                self._closing.add(reservation_id)
                self._count_open(held, -1)
                for key, lease_id, amount in held.carved:
                    window = self._windows.get(key)
                    if window is not None and lease_id is not None and window.lease_id == lease_id:
                        window.free += amount
        if held is None:
            return self.store.release(reservation_id, status)
        return True

    def _count_open(self, held: Held, sign: int) -> None:
        """Add (1) or remove (-1) an admission from memory to its windows' open amounts and calls."""
        for claim in held.reservation.claims:
            window = self._windows.get(window_key(claim))
            if window is not None:
                window.open_amount += sign * claim.amount_nano
                window.open_calls += sign

    def _see(self, window: LeaseWindow, state: ClaimState) -> None:
        window.seen, window.seen_held = state, window.held

    def _lease_ids(self, held: Held) -> tuple[str | None, ...]:
        by_window = {key: lease_id for key, lease_id, _ in held.carved}
        return tuple(by_window.get(window_key(c)) if needs_headroom(c) else None for c in held.reservation.claims)

    def _state(self, claim: BudgetClaim) -> ClaimState:
        """The window as last read, as the contract counts it (see `claim_states`), with what this
        process did since."""
        window = self._windows.get(window_key(claim))
        if window is None:
            return ClaimState(claim.budget, claim.partition, 0, 0, 0, 0, claim.limit_nano, claim.limit_calls,
                              claim.limit_concurrent, claim.hard)
        seen = window.seen
        spent, reserved, calls, concurrent = (0, 0, 0, 0) if seen is None else (
            seen.spent_nano, seen.reserved_nano - window.seen_held, seen.calls, seen.concurrent)
        return ClaimState(claim.budget, claim.partition, spent + window.unapplied,
                          max(0, reserved + window.open_amount), calls + window.unapplied_calls + window.open_calls,
                          concurrent + window.open_calls, claim.limit_nano, claim.limit_calls,
                          claim.limit_concurrent, claim.hard)

    # -- the background writer ---------------------------------------------------------------
    def _ensure_writer(self) -> None:
        if self._writer is None:
            with self._acquire:
                if self._writer is None and not self._stop.is_set():
                    self._writer = threading.Thread(target=self._run, name="costplane-lease-writer", daemon=True)
                    self._writer.start()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.flush_interval):
            try:
                self.refill()
            except StoreError as exc:  # requests top their leases up (or take the direct path) meanwhile
                _log.debug("lease writer: leases not grown ahead: %s", exc)
            except Exception:
                _log.exception("lease writer: leases not grown ahead; requests top them up")
            if not self._due():
                continue
            try:
                self.flush()
            except Exception:  # the writer must outlive one bad batch; its records stay journaled
                _log.exception("lease writer: batch not applied; retried at the next interval")

    def _due(self) -> bool:
        """Whether the writer applies a batch now: once `batch_records` are pending, or the oldest has
        waited `batch_wait` writer intervals (or a batch failed and waits to be retried); with nothing
        pending, every interval (leases due for renewal, idle leases to give back: no transaction
        when there are none). Each batch costs a transaction (apply, renew, read the windows back)
        however few its records, so at a few hundred requests a second waiting for a fuller batch is what
        keeps the store's transactions per request low."""
        with self._lock:
            pending, since = len(self._pending), self._pending_since
        settings = self.settings
        return (not pending or pending >= settings.batch_records or bool(self._retry)
                or time.monotonic() - since >= settings.batch_wait * settings.flush_interval)

    def flush(self) -> int:
        """Apply what was settled so far (and renew the leases due); returns how many records."""
        with self._flushing:
            with self._lock:
                records, self._pending = self._pending, []
                sealed = self._journal.rotate()
            if records or sealed is not None:
                self._retry.append((records, sealed))
            now = time.monotonic()
            renew_at = self._clock() + timedelta(seconds=self.settings.ttl_seconds)
            with self._lock:
                renew = [(w.lease_id, w) for w in self._windows.values() if w.lease_id is not None
                         and w.expires - now < self.settings.ttl_seconds * 3 / 4]
            batch = [r for part, _ in self._retry for r in part]
            if not batch and not renew:
                self._give_back_idle(now)
                return 0
            touched = {window_key(claim) for record in batch if record.event is not None for claim in record.claims}
            with self._lock:  # read back in the batch's last transaction: what the process counts on
                read = [w for k, w in self._windows.items()
                        if w.lease_id is not None or w.unapplied or w.unapplied_calls or k in touched]
            try:
                lost: set[str] = set()
                states: tuple[ClaimState, ...] = ()
                chunks = range(0, max(len(batch), 1), self.BATCH)  # short transactions: locks held briefly
                for start in chunks:
                    self.round_trips += 1
                    last = start == chunks[-1]
                    gone, states = self.store.apply_leased(
                        batch[start:start + self.BATCH], [(lid, renew_at) for lid, _ in renew] if start == 0 else (),
                        [w.claim for w in read] if last else ())
                    lost |= gone
            except StoreError as exc:  # what was applied stays applied (events are idempotent by id)
                _log.warning("lease writer: %d record(s) kept in the journal, store unavailable: %s", len(batch), exc)
                return 0
            for _, segment in self._retry:
                if segment is not None:
                    Journal.discard(segment)
            self._retry = []
            with self._lock:
                for lease_id, window in renew:
                    if lease_id in lost and window.lease_id == lease_id:
                        window.lease_id, window.free, window.held = None, 0, 0
                    elif window.lease_id == lease_id:
                        window.expires = now + self.settings.ttl_seconds
                for record in batch:
                    if record.reservation is not None:
                        self._closing.discard(record.reservation.id)
                    if record.event is None:
                        continue
                    pair = loop_key(record.event)
                    seen = self._unapplied_calls.get(pair) if pair is not None else None
                    if pair is not None and seen is not None:
                        with contextlib.suppress(ValueError):
                            seen.remove(record.event.ts)
                        if not seen:
                            del self._unapplied_calls[pair]
                    cost = int(record.event.cost_nano)
                    for claim, of_lease in zip(record.claims, record.leases, strict=True):
                        applied = self._windows.get(window_key(claim))
                        if applied is None:
                            continue
                        applied.unapplied -= cost
                        applied.unapplied_calls -= 1
                        if of_lease is not None and of_lease == applied.lease_id:  # as the store moved it
                            applied.held -= min(cost, applied.held)
                for window, state in zip(read, states, strict=True):
                    self._see(window, state)
            self._give_back_idle(now)
            self._forget(now)
            return len(batch)

    def _forget(self, now: float) -> None:
        """Drop the windows that hold nothing and were not used for `FORGET_S` (runs that ended)."""
        with self._lock:
            in_use = {key for held in self._held.values() for key, _, _ in held.carved}
            for key in [k for k, w in self._windows.items() if w.lease_id is None and w.free <= 0 and not w.unapplied
                        and not w.unapplied_calls and not w.open_calls and not w.held
                        and now - w.last_used > self.FORGET_S and k not in in_use]:
                del self._windows[key]

    def _give_back_idle(self, now: float) -> None:
        with self._lock:
            idle = [(w.lease_id, w.free, w) for w in self._windows.values() if w.lease_id is not None and w.free > 0
                    and now - w.last_used > self.settings.idle_seconds]
            for _, free, window in idle:
                window.free -= free
        for lease_id, free, window in idle:
            if lease_id is not None:
                self.round_trips += 1
                back = self.store.return_lease(lease_id, free)
                with self._lock:
                    if window.lease_id == lease_id:
                        window.held = max(0, window.held - back)

    def grouped(self) -> contextlib.AbstractContextManager[None]:
        """Settlements and releases journaled by this thread in the block are written together at
        its end (`Journal.grouped`): the caller answers none of them before the block has ended."""
        return self._journal.grouped()

    # -- recovery and expiry ------------------------------------------------------------------
    def recover(self, batch: int = 500) -> int:
        """Replay the journals of dead processes (this host's earlier runs included); each one's
        leases end once its records are applied. Returns the records replayed."""
        replayed = 0
        for orphan in orphans(self.settings.journal_dir, skip=self.owner):
            done = False
            try:
                for segment in orphan.segments():
                    records = [decode_record(r) for r in read_segment(segment)]
                    for start in range(0, len(records), batch):
                        self.store.apply_leased(records[start:start + batch])
                    replayed += len(records)
                    Journal.discard(segment)
                self.store.end_leases_of(orphan.owner)
                done = True
            except StoreError as exc:
                _log.warning("journal of %s not replayed yet: %s", orphan.owner, exc)
            finally:
                orphan.close(done=done)
        if replayed:
            _log.info("replayed %d journaled settlement(s) of stopped processes", replayed)
        return replayed

    def expire_reservations(self, now: datetime) -> int:
        """Release admissions never settled (in memory and in the store); replay dead processes'
        journals, then end the leases nobody renewed."""
        with self._lock:
            due = [rid for rid, held in self._held.items() if held.reservation.expires_at <= now]
        count = sum(1 for rid in due if self.release(rid, ReservationStatus.EXPIRED))
        self.recover()
        count += self.store.expire_reservations(now)
        self.store.expire_leases(now)
        return count

    def close(self) -> None:
        """Apply what is journaled, give every lease back, release the journal. When the store
        cannot take the last records (after a few tries), the leases are kept and the journal stays
        for the next start-up (or a sibling's expiry pass) to replay before the leases end."""
        self._stop.set()
        if self._writer is not None and self._writer is not threading.current_thread():
            self._writer.join(timeout=5)
        try:
            for attempt in range(5):
                self.flush()
                if not self._retry and not self._pending:
                    break
                time.sleep(0.2 * (attempt + 1))
            else:
                _log.warning("lease ledger closed with %d record(s) journaled, not applied: its leases stay until "
                             "the journal is replayed", sum(len(part) for part, _ in self._retry))
                return
            with self._lock:
                leases = [w.lease_id for w in self._windows.values() if w.lease_id is not None]
                for window in self._windows.values():
                    window.lease_id, window.free, window.held = None, 0, 0
            for lease_id in leases:
                if lease_id is not None:
                    self.store.return_lease(lease_id)
        finally:
            self._journal.close()

    # -- the rest of BudgetLedger: the store's ------------------------------------------------
    def _promote(self, reservation_id: str) -> None:
        """A request admitted from leases becomes a store reservation (grow and accrue need one)."""
        with self._lock:
            held = self._held.pop(reservation_id, None)
        if held is None:
            return
        leases = self._lease_ids(held)
        try:
            self.store.promote_leased(held.reservation, held.decision, leases)
        except StoreError:
            with self._lock:
                self._held[reservation_id] = held
            raise
        with self._lock:  # its amounts left the leases for the reservation (as the store moved them)
            self._count_open(held, -1)
            for claim, lease_id in zip(held.reservation.claims, leases, strict=True):
                window = self._windows.get(window_key(claim))
                if window is not None and lease_id is not None and window.lease_id == lease_id:
                    window.held -= min(claim.amount_nano, window.held)

    def grow_reservation(self, reservation_id: str, extra_nano: int, expires_at: datetime,
                         decision: DecisionRecord | None = None) -> ReserveResult:
        self._promote(reservation_id)
        result = self.store.grow_reservation(reservation_id, extra_nano, expires_at, decision)
        if self._room_held(result):
            result = self.store.grow_reservation(reservation_id, extra_nano, expires_at, decision)
        claims = self._claims_of(reservation_id) if result.ok else None
        return result if claims is None else self._result(claims, result)

    def accrue(self, reservation_id: str, event: CostEvent, *, close: bool = False,
               environment_id: str | None = None, accrued_until: datetime | None = None,
               decision: DecisionRecord | None = None) -> tuple[ClaimState, ...]:
        self._promote(reservation_id)
        return self._stored(reservation_id, self.store.accrue(
            reservation_id, event, close=close, environment_id=environment_id, accrued_until=accrued_until,
            decision=decision))

    def _stored(self, reservation_id: str, states: tuple[ClaimState, ...]) -> tuple[ClaimState, ...]:
        """A store reservation's states counted as `claim_states` counts them."""
        claims = self._claims_of(reservation_id)
        return states if claims is None else self._counted(claims, states)

    def record_event(self, event: CostEvent, claims: Sequence[BudgetClaim] = ()) -> bool:
        return self.store.record_event(event, claims)

    def record_spend(self, events: Sequence[CostEvent], claims: Sequence[Sequence[BudgetClaim]],
                     decisions: Sequence[DecisionRecord | None]) -> tuple[tuple[bool, ...], tuple[ClaimState, ...]]:
        return self.store.record_spend(events, claims, decisions)

    def claim_states(self, claims: Sequence[BudgetClaim]) -> tuple[ClaimState, ...]:
        """The windows as the contract counts them, exact for this process's own requests: what it
        journaled is applied first (dry runs and environments read their own writes; not on the
        request path), then the store's counters are read and this process's leases are counted
        as its requests: its open admissions from memory are reserved (a call and a concurrent one
        each), the free headroom of its own leases is not reserved (it is room this process can
        admit into). Other processes' leases count as reserved whole (their free headroom
        included: never more room than exists), and their admissions from memory count as calls
        once applied."""
        if self._pending or self._retry:
            self.flush()
        return self._counted(claims, self.store.claim_states(claims))

    def _counted(self, claims: Sequence[BudgetClaim], states: Sequence[ClaimState]) -> tuple[ClaimState, ...]:
        """States the store returned, counted as `claim_states` counts them."""
        wanted = {(c.budget, c.partition) for c in claims}
        with self._lock:
            windows: dict[tuple[str, str], list[LeaseWindow]] = {}
            for window in self._windows.values():
                if (window.claim.budget, window.claim.partition) in wanted:
                    windows.setdefault((window.claim.budget, window.claim.partition), []).append(window)
            out: list[ClaimState] = []
            for claim, state in zip(claims, states, strict=True):
                for window in windows.get((claim.budget, claim.partition), ()):
                    if window.claim.bucket >= claim.window_start:  # the buckets the store summed
                        spent, reserved, calls, concurrent = _own(window)
                        state = _with(state, spent, reserved - window.held, calls, concurrent)
                out.append(state)
            return tuple(out)

    def _result(self, claims: Sequence[BudgetClaim], result: ReserveResult) -> ReserveResult:
        """A store reservation's result with its states (or its refused claim's numbers, this
        request included) counted as `claim_states` counts them."""
        if result.ok:
            return replace(result, states=self._counted(claims, result.states))
        if result.refused is None:
            return result
        refused = result.refused
        claim = next((c for c in claims if (c.budget, c.partition) == (refused.budget, refused.partition)), None)
        return result if claim is None else replace(result, refused=self._counted([claim], [refused])[0])

    def _claims_of(self, reservation_id: str) -> tuple[BudgetClaim, ...] | None:
        reservation = self.store.get_reservation(reservation_id)
        return None if reservation is None else reservation.claims

    def record_decision(self, decision: DecisionRecord) -> None:
        self.store.record_decision(decision)

    def count_recent_requests(self, run: str, request_hash: str, since: datetime) -> int:
        """The store's count plus this process's settled calls not yet applied to it (the loop guard
        must see a run's last calls at once, not when the writer gets to them)."""
        with self._lock:
            own = sum(1 for ts in self._unapplied_calls.get((run, request_hash), ()) if ts >= since)
        return self.store.count_recent_requests(run, request_hash, since) + own


def loop_key(event: CostEvent) -> tuple[str, str] | None:
    """What the loop guard counts an event under: its run and request hash (None: it counts nowhere)."""
    if event.context.run is None or event.request_hash is None:
        return None
    return event.context.run, event.request_hash


def _own(window: LeaseWindow) -> tuple[int, int, int, int]:
    """What this process adds to a window beyond the store's counters (spent, reserved, calls, concurrent)."""
    return (window.unapplied, window.open_amount, window.unapplied_calls + window.open_calls, window.open_calls)


def _with(state: ClaimState, spent: int, reserved: int, calls: int, concurrent: int) -> ClaimState:
    return replace(state, spent_nano=state.spent_nano + spent, reserved_nano=max(0, state.reserved_nano + reserved),
                   calls=state.calls + calls, concurrent=state.concurrent + concurrent)
