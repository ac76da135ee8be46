"""The one interface every store implements (SQLite embedded, PostgreSQL shared).

All methods are synchronous and each is one transaction. Implementations must
make `reserve` atomic across every claim: either every claim is added or none
is, and no interleaving of concurrent reserves (threads, processes, replicas)
can take a hard claim's window over any of its limits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from costplane.ledger.envtypes import EnvironmentRecord, EnvTransition
from costplane.ledger.runtypes import OutcomeRecord, RunActivity, RunNode, SloState
from costplane.ledger.types import (
    BudgetClaim,
    CallIds,
    ClaimState,
    CostEvent,
    DecisionRecord,
    KeyRecord,
    Reservation,
    ReserveResult,
)
from costplane.ledger.usertypes import ApiTokenRecord, DecisionQuery, EnvironmentQuery, Scope, UserRecord

__all__ = ["CachedResponse", "SpendRow", "Store", "StoreError", "StoreUnavailable"]


class StoreError(RuntimeError):
    """A store operation failed for a reason the caller should report."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or is locked past its timeout (fail-closed territory)."""


@dataclass(frozen=True, slots=True)
class SpendRow:
    """One group of a spend breakdown."""

    group: Mapping[str, str | None]  # dimension -> value (None = unset)
    bucket: datetime | None  # start of the time bucket, None when not bucketed
    cost_nano: int
    saved_nano: int
    events: int
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class CachedResponse:
    request_hash: str
    body: bytes
    content_type: str
    model: str
    provider: str
    cost_nano: int  # what the original call cost; a hit saves this much
    usage_json: str
    created_at: datetime
    expires_at: datetime


class Store(Protocol):
    url: str

    def migrate(self) -> None:
        """Create or upgrade the schema to the latest version (idempotent)."""

    def close(self) -> None: ...

    # -- reservations and budgets -------------------------------------------------
    def reserve(self, reservation: Reservation, decision: DecisionRecord) -> ReserveResult:
        """Atomically add every claim (amount, one call, one concurrent) or none.

        On success the reservation and the decision are written in the same
        transaction. On refusal nothing is written (the caller logs the denial).
        """

    def settle(self, reservation_id: str, event: CostEvent) -> tuple[ClaimState, ...]:
        """Turn a reservation into spend: for each claim, reserved -= amount,
        spent += event.cost_nano, concurrent -= 1; insert the event (idempotent by
        id) — one transaction. A reservation that already expired or was released
        still records the event and its spend (the money was spent). Returns the
        claims' states afterwards."""

    def release(self, reservation_id: str, status: str = "released") -> bool:
        """Give a reservation back (calls -= 1, concurrent -= 1, reserved -= amount).
        False when it was not open."""

    def expire_reservations(self, now: datetime) -> int:
        """Release every open reservation whose expires_at <= now, as 'expired'; returns how many."""

    def open_reservations(self) -> int: ...

    def get_reservation(self, reservation_id: str) -> Reservation | None: ...

    def claim_states(self, claims: Sequence[BudgetClaim]) -> tuple[ClaimState, ...]:
        """Read-only view of what each claim's window has used (the claim itself not added)."""

    def record_event(self, event: CostEvent, claims: Sequence[BudgetClaim] = ()) -> bool:
        """Insert an event that had no reservation (cache hits, ingested spans); its
        cost is added to each claim's window as spent. False if the id existed."""

    def record_spend(self, events: Sequence[CostEvent], claims: Sequence[Sequence[BudgetClaim]],
                     decisions: Sequence[DecisionRecord | None]) -> tuple[tuple[bool, ...], tuple[ClaimState, ...]]:
        """Spend observed after the fact (`claims[i]`, `decisions[i]` belong to `events[i]`), in ONE
        transaction: new events are inserted with their decision and their cost added as spent to
        their claims' windows even past a limit; an event id already stored is skipped. Returns
        which events were new and the states of the distinct windows claimed, afterwards."""

    # -- decisions ------------------------------------------------------------------
    def record_decision(self, decision: DecisionRecord) -> None: ...

    def list_decisions(
        self, *, effect: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[DecisionRecord]: ...

    # -- events and queries -----------------------------------------------------------
    def get_event(self, event_id: str) -> CostEvent | None: ...

    def find_gateway_event(self, response_id: str | None, trace_id: str | None,
                           span_ids: Sequence[str] = ()) -> CostEvent | None:
        """The gateway's cost event of a call, by response id or by trace id and span id."""

    def link_call(self, event_id: str, ids: CallIds,
                  claims_for: Callable[[CostEvent, Sequence[str] | None], Sequence[BudgetClaim]],
                  span_ids: Sequence[str] = ()) -> list[tuple[str, str]]:
        """Store the call ids of event `event_id`; the call counts once (an OTLP event of a gateway call is
        superseded and its spend taken back). Returns (superseded, gateway event) id pairs."""

    def link_calls(self, items: Sequence[tuple[str, CallIds]],
                   claims_for: Callable[[CostEvent, Sequence[str] | None], Sequence[BudgetClaim]],
                   span_ids: Mapping[str, Sequence[str]] | None = None) -> list[tuple[str, str]]:
        """`link_call` for many events (event id, its ids) in one transaction."""

    def gateway_calls(self, response_ids: Sequence[str], trace_ids: Sequence[str]) -> Mapping[tuple[str, str], str]:
        """The gateway events of many calls: ("response", response id) / ("span", trace id + span id)
        -> event id."""

    def list_events(self, *, since: datetime | None = None, limit: int = 1000) -> list[CostEvent]: ...

    def count_events(self) -> int: ...

    def spend(
        self,
        *,
        group_by: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        where: Mapping[str, str] | None = None,
        bucket: str | None = None,  # None | "hour" | "day"
    ) -> list[SpendRow]:
        """Sum of cost by the given dimensions (context dimensions, 'model', 'provider',
        'kind', 'status', 'key'); `where` filters on the same names."""

    def denial_counts(self, *, since: datetime, until: datetime,
                      scope: Scope | None = None) -> dict[tuple[str, str], int]:
        """Denials in [since, until) by ('budget' | 'policy' | 'guard', name), within `scope`."""

    def spend_windows(self, windows: Sequence[tuple[datetime, datetime]], *, group_by: Sequence[str] = (),
                      where: Mapping[str, str] | None = None) -> list[list[SpendRow]]:
        """`spend(group_by=…, where=…, since=w[0], until=w[1])` for every window, in one round trip;
        the rows of window i at index i."""

    def rebuild_rollups(self) -> Mapping[str, int]:
        """Recompute the spend rollups (schema v8) from the cost events in one transaction;
        returns the row count of each rollup table. `spend` reads the rollups when every
        name it is asked for is rolled up, with results equal to a scan of the events."""

    def count_recent_requests(self, run: str, request_hash: str, since: datetime) -> int:
        """How many events of this run carried this request hash since `since` (loop detection)."""

    # -- response cache -------------------------------------------------------------------
    def cache_get(self, request_hash: str, now: datetime) -> CachedResponse | None: ...

    def cache_put(self, entry: CachedResponse) -> None: ...

    def cache_purge(self, now: datetime) -> int:
        """Delete the entries expired at `now`; returns how many (the scheduled cache purge)."""

    # -- virtual keys ------------------------------------------------------------------------
    def create_key(self, key: KeyRecord) -> None: ...

    def key_by_hash(self, secret_hash: str) -> KeyRecord | None: ...

    def get_key(self, key_id: str) -> KeyRecord | None: ...

    def list_keys(self) -> list[KeyRecord]: ...

    def revoke_key(self, key_id: str, now: datetime) -> bool: ...

    # -- run trees, outcomes, economic SLOs (schema v5; ledger/runqueries.py) -------------------
    def record_nodes(self, nodes: Sequence[RunNode], events: Sequence[CostEvent] = ()) -> None:
        """Upsert run-tree nodes and insert events without claims (idempotent by id), in one
        transaction."""

    def run_nodes(self, run: str) -> list[RunNode]: ...

    def run_roots(self, *, since: datetime | None = None, limit: int = 100) -> list[RunNode]: ...

    def run_events(self, run: str) -> list[CostEvent]: ...

    def run_members(self, roots: Sequence[str]) -> dict[str, list[str]]:
        """The nested runs of each root (one statement per 500 roots)."""

    def run_activity(self, *, runs: Sequence[str] | None = None, since: datetime | None = None,
                     limit: int | None = None) -> list[RunActivity]:
        """Per run id, its cost events and decisions aggregated, newest start first (one grouped query)."""

    def latest_decisions(self, runs: Sequence[str]) -> dict[str, DecisionRecord]:
        """The latest decision of each run (effect `observed` excluded)."""

    def reservation_statuses(self, ids: Sequence[str]) -> dict[str, str]: ...

    def record_outcome(self, outcome: OutcomeRecord) -> bool: ...

    def list_outcomes(self, *, outcome: str | None = None, since: datetime | None = None,
                      until: datetime | None = None) -> list[OutcomeRecord]: ...

    def put_slo_state(self, state: SloState) -> None: ...

    def slo_states(self) -> list[SloState]: ...

    # -- governed environments (schema v4; ledger/envqueries.py) ----------------------------------
    def create_environment(self, env: EnvironmentRecord, decision: DecisionRecord | None = None) -> None: ...

    def get_environment(self, env_id: str) -> EnvironmentRecord | None: ...

    def list_environments(self, *, states: Sequence[str] = (), limit: int = 1000) -> list[EnvironmentRecord]: ...

    def due_environments(self, now: datetime, limit: int = 1000) -> list[EnvironmentRecord]:
        """Open environments whose next_action_at <= now, most overdue first."""

    def update_environment(self, env_id: str, changes: Mapping[str, Any], *,
                           states: Sequence[str] = ()) -> bool: ...

    def transition_environment(self, env_id: str, from_states: Sequence[str], to_state: str, *, ts: datetime,
                               reason: str, decision: DecisionRecord | None = None,
                               changes: Mapping[str, Any] | None = None) -> EnvironmentRecord | None:
        """Compare-and-set the state, apply changes, record the transition and decision atomically."""

    def environment_transitions(self, env_id: str) -> list[EnvTransition]: ...

    def accrue(self, reservation_id: str, event: CostEvent, *, close: bool = False,
               environment_id: str | None = None, accrued_until: datetime | None = None,
               decision: DecisionRecord | None = None) -> tuple[ClaimState, ...]:
        """Record the event (and its observed `decision`, when new) and move its cost from reserved to
        spent, keeping the reservation open."""

    def grow_reservation(self, reservation_id: str, extra_nano: int, expires_at: datetime,
                         decision: DecisionRecord | None = None) -> ReserveResult:
        """Atomically hold more on every claim (limit-checked like reserve) and move the expiry."""

    # -- visibility: alerts, metrics, exports (schema v6; ledger/alertqueries.py) ---------------
    def claim_alert(self, dedup_key: str, kind: str, subject: str, now: datetime) -> bool:
        """Record that the alert `dedup_key` was raised; True only for the first caller (any replica)."""

    def decision_counts(self) -> dict[tuple[str, str], int]:
        """Number of logged decisions per (hook, effect)."""

    def budget_partitions(self, budget: str, window_start: int, limit: int = 20) -> list[str]:
        """The partitions of a budget with counter rows in the window (bucket >= window_start),
        most used first, at most `limit`."""

    def events_page(self, *, since: datetime | None = None, until: datetime | None = None,
                    after: tuple[datetime, str] | None = None, limit: int = 1000) -> list[CostEvent]:
        """Events with since <= ts < until, oldest first (ts, id), strictly after the (ts, id) `after`."""

    # -- policy replay: keyset pages (ledger/replayqueries.py) ------------------------------------
    def replay_decisions(self, hooks: Sequence[str], *, since: datetime | None = None,
                         until: datetime | None = None, after: tuple[datetime, str] | None = None,
                         limit: int = 5000) -> list[DecisionRecord]:
        """Decisions of `hooks` with since <= ts < until, oldest first by (ts, id), strictly after `after`
        (without reason, policies and budgets)."""

    def replay_decision_rows(self, hooks: Sequence[str], *, since: datetime | None = None,
                             until: datetime | None = None, after: tuple[int, str] | None = None,
                             limit: int = 5000) -> list[tuple[Any, ...]]:
        """`replay_decisions` as rows of the columns replay reads (`replayqueries.DECISION_FIELDS`: ts in
        microseconds, JSON as text); `after` is (ts in microseconds, id)."""

    def replay_event_rows(self, *, since: datetime | None = None, until: datetime | None = None,
                          after: tuple[int, str] | None = None,
                          limit: int = 5000) -> tuple[list[tuple[Any, ...]], tuple[Any, ...] | None]:
        """Rows (`replayqueries.EVENT_FIELDS`, no context: replay takes it from the decision) of the
        events that carry a decision id, since <= ts < until, oldest first by (ts, id), strictly after
        `after` (ts in microseconds, id); and the page's last row (the next `after`), None at the end."""

    def environment_costs(self, decision_ids: Sequence[str]) -> dict[str, int]:
        """decision id -> sum of the `environment` cost events recorded under it."""

    # -- users, API tokens, filtered decisions log (schema v7; ledger/userqueries.py) -------------
    def create_user(self, user: UserRecord) -> None: ...

    def get_user(self, user_id: str) -> UserRecord | None: ...

    def user_by_name(self, name: str) -> UserRecord | None: ...

    def list_users(self) -> list[UserRecord]: ...

    def disable_user(self, user_id: str, now: datetime) -> bool: ...

    def create_api_token(self, token: ApiTokenRecord) -> None: ...

    def api_token_by_hash(self, secret_hash: str) -> ApiTokenRecord | None: ...

    def list_api_tokens(self, user_id: str) -> list[ApiTokenRecord]: ...

    def revoke_api_token(self, token_id: str, now: datetime) -> bool: ...

    def credentials_generation(self) -> int:
        """Grows with every revocation (key, user, API token, session), in the revoking transaction."""
        ...

    def query_decisions(self, query: DecisionQuery) -> list[DecisionRecord]:
        """Decisions matching every set filter (effect, policy, key, time, teams, scope, page), newest first."""

    def query_environments(self, query: EnvironmentQuery) -> list[EnvironmentRecord]:
        """Environments matching every set filter (states, team, blueprint, scope), newest first."""

    # -- the waste detectors' grouped reads (schema v10/v11; ledger/optimizequeries.py) -------------------
    # Times are µs since the epoch; rows are plain tuples, documented on each method there.
    def optimize_model_groups(self, since_us: int, until_us: int, max_input: int,
                              max_output: int) -> list[tuple[Any, ...]]: ...

    def optimize_model_rows(self, since_us: int, until_us: int, agent: str | None, provider: str, model: str,
                            tier: str | None, team: str | None, *, max_input: int | None = None,
                            max_output: int | None = None) -> list[tuple[Any, ...]]: ...

    def optimize_model_costs(self, since_us: int, until_us: int, agent: str | None, provider: str, model: str,
                             tier: str | None, team: str | None, femto: Sequence[int], *,
                             max_input: int | None = None, max_output: int | None = None,
                             by_experiment: bool = False) -> list[tuple[Any, ...]]: ...

    def optimize_agents(self, since_us: int, until_us: int) -> list[str]: ...

    def optimize_agent_runs(self, since_us: int, until_us: int, agent: str) -> tuple[Any, ...]: ...

    def optimize_loop_summary(self, since_us: int, until_us: int, agent: str) -> tuple[Any, ...]: ...

    def optimize_run_steps(self, since_us: int, until_us: int, agent: str) -> list[tuple[Any, ...]]: ...

    def optimize_run_sizes(self, since_us: int, until_us: int, agent: str) -> list[tuple[Any, ...]]: ...

    def optimize_run_excess(self, since_us: int, until_us: int, agent: str, baseline: int) -> int: ...

    def optimize_agent_days(self, since_us: int, until_us: int, agent: str) -> list[tuple[Any, ...]]: ...

    def optimize_cacheable(self, since_us: int, until_us: int) -> list[tuple[Any, ...]]: ...

    def assess_spend(self, since_us: int) -> tuple[Any, ...]: ...

    def assess_decisions(self, since_us: int) -> list[tuple[Any, ...]]: ...

    def optimize_cache_legacy(self, since_us: int, until_us: int) -> list[tuple[Any, ...]]: ...

    def optimize_decision_events(self, since_us: int, until_us: int,
                                 decision_ids: Sequence[str]) -> list[tuple[Any, ...]]: ...

    def optimize_embeddings(self, since_us: int, until_us: int) -> list[tuple[Any, ...]]: ...

    def optimize_model_outcome_runs(self, since_us: int, until_us: int, agent: str, provider: str,
                                    model: str) -> tuple[Any, ...]: ...

    def optimize_outcomes(self, since_us: int, until_us: int) -> list[tuple[Any, ...]]: ...

    # -- introspection -----------------------------------------------------------------------
    def schema_version(self) -> int: ...

    def stats(self) -> Mapping[str, Any]: ...
