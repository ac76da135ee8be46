"""The one interface every store implements (SQLite embedded, PostgreSQL shared): the union of the
capability contracts.

Each part of the product needs only a few of these methods; the contracts name those parts
(`contracts.py`, `contracts_records.py`, `contracts_admin.py`, `contracts_analytics.py`), and a
caller that needs one of them is typed against it. All methods are synchronous and each is one
transaction. Only `BudgetLedger` has atomicity requirements across counter rows: `reserve` adds
every claim or none, and no interleaving of concurrent reserves (threads, processes, replicas) can
take a hard claim's window over any of its limits. What a backend must pass is the conformance
suite of each contract (`tests/ledger/contracts/`).
"""

from __future__ import annotations

from typing import Protocol

from costplane.ledger.contracts import BudgetLedger, LedgerAdmin, ReservationLog
from costplane.ledger.contracts_admin import AlertClaims, Credentials, Environments, ResponseCache
from costplane.ledger.contracts_analytics import AnalyticsReads, ReplayReads
from costplane.ledger.contracts_records import CostEventLog, DecisionLog, RunLedger
from costplane.ledger.storetypes import CachedResponse, SpendRow, StoreError, StoreUnavailable

__all__ = ["CONTRACTS", "CachedResponse", "SpendRow", "Store", "StoreError", "StoreUnavailable"]


class Store(
    BudgetLedger,
    ReservationLog,
    DecisionLog,
    CostEventLog,
    RunLedger,
    Credentials,
    Environments,
    ResponseCache,
    AlertClaims,
    AnalyticsReads,
    ReplayReads,
    LedgerAdmin,
    Protocol,
):
    """Every contract at once: what the SQLite and PostgreSQL stores implement."""


#: every capability contract `Store` is the union of, by name (docs and the conformance suites)
CONTRACTS: dict[str, type] = {c.__name__: c for c in (
    BudgetLedger, ReservationLog, DecisionLog, CostEventLog, RunLedger, Credentials, Environments,
    ResponseCache, AlertClaims, AnalyticsReads, ReplayReads, LedgerAdmin)}
