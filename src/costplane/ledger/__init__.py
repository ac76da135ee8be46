"""The ledger: what the system observes — cost events, reservations, budget counters,
decisions, keys — behind one `Store` interface with SQLite and PostgreSQL implementations."""

from __future__ import annotations

from costplane.ledger.open import open_store
from costplane.ledger.postgres import PostgresStore
from costplane.ledger.sqlite import SqliteStore
from costplane.ledger.store import CachedResponse, SpendRow, Store, StoreError, StoreUnavailable
from costplane.ledger.types import (
    BudgetClaim,
    ClaimState,
    CostEvent,
    DecisionRecord,
    KeyRecord,
    Reservation,
    ReservationStatus,
    ReserveResult,
)
from costplane.ledger.windows import Window, WindowError

__all__ = [
    "BudgetClaim",
    "CachedResponse",
    "ClaimState",
    "CostEvent",
    "DecisionRecord",
    "KeyRecord",
    "PostgresStore",
    "Reservation",
    "ReservationStatus",
    "ReserveResult",
    "SpendRow",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Window",
    "WindowError",
    "open_store",
]
