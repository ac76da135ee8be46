"""Schema step 16: the leases of lease-based budgets (ledger/leases.py, ledger/lease_store.py).

A lease is a slice of one budget window's headroom that a serving process holds to admit requests
in memory. It is held in the shared counters exactly like a reservation (its `held_nano` is part of
`budget_counters.reserved_nano` of its row `bucket`), so every limit check — a plain reservation's
or another lease's — already counts it. One row per lease; a returned or expired lease's row is
deleted (its remaining `held_nano` given back to the counters in the same transaction).
"""

from __future__ import annotations

__all__ = ["LEASE_STEP"]

LEASE_STEP: tuple[str, ...] = (
    """CREATE TABLE budget_leases (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    budget TEXT NOT NULL,
    partition TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    held_nano BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
)""",
    "CREATE INDEX budget_leases_expires ON budget_leases (expires_at)",
    "CREATE INDEX budget_leases_window ON budget_leases (budget, partition, window_start)",
)
