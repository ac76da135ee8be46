"""The store's capability contracts: what each part of the product needs from a backend.

`BudgetLedger` is the only contract with atomicity requirements across rows; the decision core is
its only caller. A backend (SQLite, PostgreSQL, in memory, leased) implements it; the differential
test and the conformance suites (`tests/ledger/contracts/`) hold every implementation to the same
counters. The other contracts are in `contracts_records.py` (decisions, cost events and spend,
runs), `contracts_admin.py` (credentials, environments, response cache, alert claims) and
`contracts_analytics.py` (the detectors' and replay's reads); `store.Store` is their union.
This module also holds the two small contracts around the ledger: reading reservations back, and
the schema and connection of a store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from costplane.ledger.types import BudgetClaim, ClaimState, CostEvent, DecisionRecord, Reservation, ReserveResult

__all__ = ["BudgetLedger", "LedgerAdmin", "ReservationLog"]


class BudgetLedger(Protocol):
    """Budget counters, reservations and the records written in the same transaction as them."""

    def reserve(self, reservation: Reservation, decision: DecisionRecord) -> ReserveResult:
        """Atomically add every claim (amount, one call, one concurrent) or none; on success the
        reservation and the decision are written with the counters."""

    def settle(self, reservation_id: str, event: CostEvent) -> tuple[ClaimState, ...]:
        """Turn a reservation into spend and insert the event (idempotent by event id: settling again
        with the same event changes nothing), atomically. A reservation already released or expired
        still records the event's spend (the money was spent); an unknown reservation id is a
        `StoreError`."""

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
        """How many events of `run` with this normalised request hash have ts >= `since` (loop guard)."""


class ReservationLog(Protocol):
    """Reading reservations and counter partitions back (dashboards, runs, the admin tools)."""

    def open_reservations(self) -> int:
        """How many reservations are open now."""

    def get_reservation(self, reservation_id: str) -> Reservation | None:
        """The reservation with its current status; None when the id is unknown."""

    def reservation_statuses(self, ids: Sequence[str]) -> dict[str, str]:
        """Reservation id -> status of every known id among `ids`."""

    def budget_partitions(self, budget: str, window_start: int, limit: int = 20) -> list[str]:
        """The partitions of a budget with counter rows in the window (bucket >= window_start),
        most used first, at most `limit`."""


class LedgerAdmin(Protocol):
    """The store as a database: where it is, its schema, its connection."""

    url: str

    def migrate(self) -> None:
        """Create or upgrade the schema to the latest version (idempotent)."""

    def close(self) -> None:
        """Release the connection(s); the store is unusable afterwards."""

    def schema_version(self) -> int:
        """The schema version applied (0 before `migrate`)."""

    def stats(self) -> Mapping[str, Any]:
        """Row counts and backend facts for `costplane status` and the metrics endpoint."""
