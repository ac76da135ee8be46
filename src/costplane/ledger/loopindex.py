"""`LoopIndexedLedger`: a budget ledger whose loop counts skip the store reads that would find nothing.

It wraps the decision core's ledger — the store itself (leases off) or a `LeasedLedger` over it
(leases on) — and changes one thing: `count_recent_requests` first asks the loop filter
(ledger/loopfilter.py), which the store's feed keeps up to date with every process's calls
(PostgreSQL: notifications, ledger/loopfeed.py, schema v18; SQLite: the table's tail read every
50 ms, ledger/looppoll.py). A (run, request hash) the filter has never seen in the window
counts 0 without a read; every other count is the wrapped ledger's. Every call this process
settles or records goes into the filter before it is written, so its own calls count at once.
Everything else goes to the wrapped ledger unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from costplane.ledger.contracts import BudgetLedger
from costplane.ledger.feedthread import FeedThread
from costplane.ledger.leases import LeasedLedger, loop_key
from costplane.ledger.types import BudgetClaim, ClaimState, CostEvent, DecisionRecord, Reservation, ReserveResult

__all__ = ["LoopIndexedLedger"]


class LoopIndexedLedger:
    """`BudgetLedger` over `inner` whose loop counts consult `feed`'s filter first (see the module doc)."""

    def __init__(self, inner: BudgetLedger, feed: FeedThread) -> None:
        self.inner = inner
        self.feed = feed
        self.reads_saved = 0  # loop counts answered 0 by the filter, without a store read

    def _seen(self, events: Sequence[CostEvent]) -> None:
        """This process's calls reach its filter at once (before they are written: a call that then
        fails is a false positive, which only costs a read), not when the store's feed sends them."""
        for event in events:
            key = loop_key(event)
            if key is not None:
                self.feed.filter.add(key[0], key[1], event.ts)

    def count_recent_requests(self, run: str, request_hash: str, since: datetime) -> int:
        """0 without a read when the feed is caught up and its filter has never seen the pair in the
        window (no process committed such a call, up to notifications in flight, and this one settled
        none); otherwise the wrapped ledger's count. The first count starts the feed."""
        feed = self.feed
        if not feed.ready:
            feed.start()  # on the first count: a process that never counts (a CLI command) never listens
            return self.inner.count_recent_requests(run, request_hash, since)
        if not feed.filter.maybe(run, request_hash, since):
            self.reads_saved += 1
            return 0
        return self.inner.count_recent_requests(run, request_hash, since)

    def settle(self, reservation_id: str, event: CostEvent) -> tuple[ClaimState, ...]:
        self._seen((event,))
        return self.inner.settle(reservation_id, event)

    def accrue(self, reservation_id: str, event: CostEvent, *, close: bool = False,
               environment_id: str | None = None, accrued_until: datetime | None = None,
               decision: DecisionRecord | None = None) -> tuple[ClaimState, ...]:
        self._seen((event,))
        return self.inner.accrue(reservation_id, event, close=close, environment_id=environment_id,
                                 accrued_until=accrued_until, decision=decision)

    def record_event(self, event: CostEvent, claims: Sequence[BudgetClaim] = ()) -> bool:
        self._seen((event,))
        return self.inner.record_event(event, claims)

    def record_spend(self, events: Sequence[CostEvent], claims: Sequence[Sequence[BudgetClaim]],
                     decisions: Sequence[DecisionRecord | None]) -> tuple[tuple[bool, ...], tuple[ClaimState, ...]]:
        self._seen(events)
        return self.inner.record_spend(events, claims, decisions)

    def reserve(self, reservation: Reservation, decision: DecisionRecord) -> ReserveResult:
        return self.inner.reserve(reservation, decision)

    def release(self, reservation_id: str, status: str = "released") -> bool:
        return self.inner.release(reservation_id, status)

    def grow_reservation(self, reservation_id: str, extra_nano: int, expires_at: datetime,
                         decision: DecisionRecord | None = None) -> ReserveResult:
        return self.inner.grow_reservation(reservation_id, extra_nano, expires_at, decision)

    def expire_reservations(self, now: datetime) -> int:
        return self.inner.expire_reservations(now)

    def claim_states(self, claims: Sequence[BudgetClaim]) -> tuple[ClaimState, ...]:
        return self.inner.claim_states(claims)

    def record_decision(self, decision: DecisionRecord) -> None:
        self.inner.record_decision(decision)

    def close(self) -> None:
        """Stop the feed; a wrapped `LeasedLedger` applies its journal and gives its leases back (a
        wrapped store stays open: its owner closes it)."""
        self.feed.close()
        if isinstance(self.inner, LeasedLedger):
            self.inner.close()
