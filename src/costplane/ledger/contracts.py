"""The store's capability contracts: what each part of the product needs from a backend.

`BudgetLedger` is the only contract with atomicity requirements; the decision core is its only
caller. A backend (SQLite, PostgreSQL, in memory, leased) implements it; the differential test and
the conformance suites hold every implementation to the same counters.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from costplane.ledger.types import BudgetClaim, ClaimState, CostEvent, DecisionRecord, Reservation, ReserveResult

__all__ = ["BudgetLedger"]


class BudgetLedger(Protocol):
    """Budget counters, reservations and the records written in the same transaction as them."""

    def reserve(self, reservation: Reservation, decision: DecisionRecord) -> ReserveResult:
        """Atomically add every claim (amount, one call, one concurrent) or none; on success the
        reservation and the decision are written with the counters."""

    def settle(self, reservation_id: str, event: CostEvent) -> tuple[ClaimState, ...]:
        """Turn a reservation into spend and insert the event (idempotent by id), atomically."""

    def release(self, reservation_id: str, status: str = "released") -> bool:
        """Give a reservation back; False when it was not open."""

    def grow_reservation(self, reservation_id: str, extra_nano: int, expires_at: datetime,
                         decision: DecisionRecord | None = None) -> ReserveResult:
        """Atomically hold more on every claim (limit-checked like reserve) and move the expiry."""

    def accrue(self, reservation_id: str, event: CostEvent, *, close: bool = False,
               environment_id: str | None = None, accrued_until: datetime | None = None,
               decision: DecisionRecord | None = None) -> tuple[ClaimState, ...]:
        """Record the event and move its cost from reserved to spent, keeping the reservation open
        (closing it when `close`)."""

    def expire_reservations(self, now: datetime) -> int:
        """Release every open reservation whose expiry has passed; returns how many."""

    def record_event(self, event: CostEvent, claims: Sequence[BudgetClaim] = ()) -> bool:
        """An event with no reservation (cache hits); its cost is added to each claim as spent."""

    def record_spend(self, events: Sequence[CostEvent], claims: Sequence[Sequence[BudgetClaim]],
                     decisions: Sequence[DecisionRecord | None]) -> tuple[tuple[bool, ...], tuple[ClaimState, ...]]:
        """Spend observed after the fact, added to its claims even past a limit, in one transaction."""

    def claim_states(self, claims: Sequence[BudgetClaim]) -> tuple[ClaimState, ...]:
        """Read-only view of what each claim's window has used."""

    def record_decision(self, decision: DecisionRecord) -> None:
        """A decision that holds nothing (a denial, a dry run)."""

    def count_recent_requests(self, run: str, request_hash: str, since: datetime) -> int:
        """How many calls of `run` with this normalised request hash were seen since `since` (loop guard)."""
