"""The values of lease-based budgets (ledger/leases.py): settings, a process's view of one budget
window, an admission held in memory, and the journal's record encoding."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from costplane.ledger import codec
from costplane.ledger.lease_store import LeasedRecord
from costplane.ledger.types import BudgetClaim, ClaimState, DecisionRecord, Reservation, ReservationStatus

__all__ = ["Held", "Key", "LeaseSettings", "LeaseWindow", "decode_record", "encode_record", "needs_headroom",
           "new_lease_id", "window_key"]

Key = tuple[str, str, int]  # budget, partition, window_start


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    """`ledger.leases`, `ledger.lease_ttl`, `ledger.journal`, `ledger.journal_fsync` (settings.py), and
    the tuning the writer and the top-ups use."""

    enabled: bool = False
    ttl_seconds: int = 30
    journal_dir: Path = Path(".costplane/journal")
    fsync: bool = False
    flush_interval: float = 0.05  # seconds between wake-ups of the background writer
    batch_records: int = 64  # the writer applies a batch once this many records are pending...
    batch_wait: int = 5  # ...or once the oldest has waited this many intervals (0.25 s by default)
    idle_seconds: float = 2.0  # free headroom of a window unused this long is given back
    share: int = 4  # a top-up takes at most 1/share of a window's remaining headroom
    horizon_seconds: float = 2.0  # a top-up asks for this long of recent demand
    hot_per_second: int = 4  # requests per second a window needs before it is leased


class LeaseWindow:
    """This process's view of one budget window: its lease and what it last read."""

    __slots__ = ("amount", "arrivals", "arrivals_since", "claim", "direct_until", "expires", "free", "held",
                 "last_used", "lease_id", "open_amount", "open_calls", "rate_since", "seen", "seen_held", "unapplied",
                 "unapplied_calls", "used")

    def __init__(self, claim: BudgetClaim, now: float) -> None:
        self.claim = claim  # the first claim seen (limits, partition; its bucket holds the lease)
        self.lease_id: str | None = None
        self.free = 0  # headroom of the lease promised to no request
        self.expires = 0.0  # monotonic time the lease expires at, as last renewed
        self.direct_until = 0.0  # near the limit: the direct path until then
        self.held = 0  # what the lease's row holds in the store, as this process last changed it
        self.seen: ClaimState | None = None
        self.seen_held = 0  # `held` when `seen` was read (the lease's part of its reserved_nano)
        self.open_amount = 0  # amounts of this process's open admissions from memory (every claim)
        self.open_calls = 0  # claims of those admissions (each counts a call and a concurrent one)
        self.unapplied = 0  # cost settled here, not yet applied to the store
        self.unapplied_calls = 0  # calls settled here, not yet applied
        self.used = 0  # amounts admitted since rate_since
        self.amount = 0  # the headroom the last admission from the lease took
        self.rate_since = now
        self.last_used = now
        self.arrivals = 0  # requests that asked for this window in the second from arrivals_since
        self.arrivals_since = now


@dataclass(slots=True)
class Held:
    reservation: Reservation
    decision: DecisionRecord
    carved: list[tuple[Key, str | None, int]]  # window, lease (None: no headroom needed), amount


def encode_record(record: LeasedRecord) -> dict[str, Any]:
    return {"d": None if record.decision is None else codec.decision_to_row(record.decision),
            "c": codec.claims_to_json(record.claims), "l": list(record.leases),
            "e": None if record.event is None else codec.event_to_row_with_ids(record.event),
            "r": None if record.reservation is None else _reservation_head(record.reservation),
            "s": record.closed_as}


def decode_record(data: dict[str, Any]) -> LeasedRecord:
    return LeasedRecord(decision=None if data.get("d") is None else codec.row_to_decision(data["d"]),
                        claims=codec.claims_from_json(data["c"]), leases=tuple(data.get("l") or ()),
                        event=None if data.get("e") is None else codec.row_to_event(data["e"]),
                        reservation=None if data.get("r") is None else _reservation(data["r"], data["c"]),
                        closed_as=str(data.get("s") or ReservationStatus.RELEASED))


def _reservation_head(res: Reservation) -> list[Any]:
    """A reservation without its claims (the record holds them once)."""
    return [res.id, codec.to_us(res.created_at), codec.to_us(res.expires_at), res.decision_id, res.key_id]


def _reservation(head: list[Any], claims: Any) -> Reservation:
    rid, created, expires, decision_id, key_id = head
    return codec.row_to_reservation((rid, ReservationStatus.OPEN, created, expires, decision_id, key_id, claims))


def new_lease_id() -> str:
    return f"lease-{uuid.uuid4().hex}"


def window_key(claim: BudgetClaim) -> Key:
    return claim.budget, claim.partition, claim.window_start


def needs_headroom(claim: BudgetClaim) -> bool:
    return claim.hard and claim.limit_nano is not None
