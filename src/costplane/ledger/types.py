"""Records the ledger keeps: cost events, reservations and their budget claims, decisions, keys.

These are plain immutable values; the store persists them. Times are aware UTC
datetimes; money is integer nano-USD.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from costplane.attribution.context import Context
from costplane.pricing.types import TokenUsage

__all__ = [
    "BudgetClaim",
    "CallIds",
    "ClaimState",
    "CostEvent",
    "DecisionRecord",
    "KeyRecord",
    "Reservation",
    "ReservationStatus",
    "ReserveResult",
]


@dataclass(frozen=True, slots=True)
class BudgetClaim:
    """One budget's share of a reservation, already resolved to a counter row.

    A budget is partitioned by the values of its `per` dimensions (e.g. one
    counter per run) and bucketed in time. The store sums every bucket of
    (budget, partition) with bucket >= window_start to get what the window has
    used, and adds this claim to the row `bucket`.
    """

    budget: str
    partition: str  # "" for an unpartitioned budget, else "run=r-1" / "agent=a,team=t"
    bucket: int  # epoch seconds (UTC) of the counter row this claim lands in
    window_start: int  # epoch seconds; rows with bucket >= window_start count against the limits
    amount_nano: int  # worst-case cost held by this claim
    limit_nano: int | None = None  # dollar limit of the window, None = none
    limit_calls: int | None = None  # number of calls in the window, None = none
    limit_concurrent: int | None = None  # open reservations at once, None = none
    hard: bool = True  # a soft claim never refuses; it is recorded and alerts


@dataclass(frozen=True, slots=True)
class ClaimState:
    """What a budget window has used, as seen by one reserve/settle (after it)."""

    budget: str
    partition: str
    spent_nano: int
    reserved_nano: int
    calls: int
    concurrent: int
    limit_nano: int | None
    limit_calls: int | None
    limit_concurrent: int | None
    hard: bool

    @property
    def remaining_nano(self) -> int | None:
        if self.limit_nano is None:
            return None
        return self.limit_nano - self.spent_nano - self.reserved_nano

    @property
    def exceeded(self) -> str | None:
        """Which limit this state breaks, if any: 'amount', 'calls' or 'concurrent'."""
        if self.limit_nano is not None and self.spent_nano + self.reserved_nano > self.limit_nano:
            return "amount"
        if self.limit_calls is not None and self.calls > self.limit_calls:
            return "calls"
        if self.limit_concurrent is not None and self.concurrent > self.limit_concurrent:
            return "concurrent"
        return None


@dataclass(frozen=True, slots=True)
class ReserveResult:
    """Outcome of one atomic reservation against all claims.

    ok=False: nothing was written; `refused` is the first hard claim that would
    have broken a limit, with `refused_limit` naming which one ('amount', 'calls'
    or 'concurrent') and the numbers as they would have been *with* this claim.
    ok=True: `states` holds every claim's window after the reservation.
    """

    ok: bool
    states: tuple[ClaimState, ...] = ()
    refused: ClaimState | None = None
    refused_limit: str | None = None


class ReservationStatus:
    OPEN = "open"
    SETTLED = "settled"
    RELEASED = "released"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Reservation:
    id: str
    claims: tuple[BudgetClaim, ...]
    created_at: datetime
    expires_at: datetime
    decision_id: str
    key_id: str | None = None
    status: str = ReservationStatus.OPEN

    @property
    def amount_nano(self) -> int:
        return max((c.amount_nano for c in self.claims), default=0)


@dataclass(frozen=True, slots=True)
class CostEvent:
    """One priced unit of spend. Immutable; the store ignores a second event with the same id."""

    id: str
    ts: datetime
    context: Context
    provider: str
    model: str
    cost_nano: int
    kind: str = "llm"  # llm | cache_hit | (later) environment, gpu, storage, …
    endpoint: str = ""  # chat.completions | embeddings | messages
    usage: TokenUsage = field(default_factory=TokenUsage)
    unit_prices: Mapping[str, str] = field(default_factory=dict)  # token type -> USD per MTok
    saved_nano: int = 0  # money not spent thanks to costplane (cache hit, reroute)
    decision_id: str | None = None
    reservation_id: str | None = None
    latency_ms: int = 0
    status: str = "ok"  # ok | error | cut | cached | estimated | unpriced | over_bound | superseded
    price_flagged: bool = False  # charged a declared default price for a model with no known price
    request_hash: str | None = None
    requested_model: str | None = None  # the model the client asked for, before routing
    # The same call seen twice (the gateway, then an OTLP span of the client) is one event: these
    # ids find it. `response_id` is the provider's (`chatcmpl-…`, `msg_…`); `trace_id` / `span_id`
    # are W3C hex ids: for a gateway event the trace id and parent id of the client's `traceparent`,
    # for an OTLP event the span's own.
    response_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None


@dataclass(frozen=True, slots=True)
class CallIds:
    """The ids of one upstream call, as a cost event stores them (`CostEvent.response_id`, …)."""

    response_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None

    def __bool__(self) -> bool:
        return bool(self.response_id or (self.trace_id and self.span_id))


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A versioned record of one decision: its input, its result and the bundle revision."""

    id: str
    ts: datetime
    hook: str  # llm.request, …
    effect: str  # the final effect: allow | deny | route | mutate | …
    bundle_revision: str
    context: Context
    input: Mapping[str, Any]
    result: Mapping[str, Any]
    policies: tuple[str, ...] = ()  # names of policies that matched
    budgets: tuple[str, ...] = ()  # names of budgets that applied
    reason: str = ""
    key_id: str | None = None
    status_code: int = 200


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A virtual key. Only the SHA-256 of the secret is stored."""

    id: str
    secret_hash: str
    prefix: str  # first characters of the secret, to recognise a key in listings
    name: str
    attributes: Mapping[str, str]  # bound context dimensions/tags; requests can never override them
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def usable(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at
