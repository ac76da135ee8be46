"""Contracts of the records the product keeps: the decisions log, cost events with the spend
queries over them, and runs with their outcomes and economic SLO state.

Each method is one transaction of the backend. Writes are idempotent by id where stated, so a
retried write never counts twice; none of them touches a budget counter except as stated
(`link_call` takes a superseded event's spend back from its windows in the same transaction).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from costplane.ledger.runtypes import OutcomeRecord, RunActivity, RunNode, SloState
from costplane.ledger.storetypes import SpendRow
from costplane.ledger.types import BudgetClaim, CallIds, CostEvent, DecisionRecord
from costplane.ledger.usertypes import DecisionQuery, Scope

__all__ = ["CostEventLog", "DecisionLog", "RunLedger"]


class DecisionLog(Protocol):
    """Every decision the product took, appended and read back (API, dashboards, metrics)."""

    def record_decision(self, decision: DecisionRecord) -> None:
        """Append a decision that holds nothing (a denial, a dry run, an SLO breach)."""

    def list_decisions(
        self, *, effect: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[DecisionRecord]:
        """The newest decisions first, optionally of one effect and since a time."""

    def query_decisions(self, query: DecisionQuery) -> list[DecisionRecord]:
        """Decisions matching every set filter (effect, policy, key, time, teams, scope, page), newest first."""

    def decision_counts(self) -> dict[tuple[str, str], int]:
        """Number of logged decisions per (hook, effect)."""

    def latest_decisions(self, runs: Sequence[str]) -> dict[str, DecisionRecord]:
        """The latest decision of each run (effect `observed` excluded)."""


class CostEventLog(Protocol):
    """Cost events (one per metered call or charge), the links between a call's gateway and
    telemetry records, and the spend queries over them."""

    def get_event(self, event_id: str) -> CostEvent | None: ...

    def find_gateway_event(self, response_id: str | None, trace_id: str | None,
                           span_ids: Sequence[str] = ()) -> CostEvent | None:
        """The gateway's cost event of a call, by response id or by trace id and span id."""

    def link_call(self, event_id: str, ids: CallIds,
                  claims_for: Callable[[CostEvent, Sequence[str] | None], Sequence[BudgetClaim]],
                  span_ids: Sequence[str] = ()) -> list[tuple[str, str]]:
        """Store the call ids of event `event_id`; the call counts once (an OTLP event of a gateway call is
        superseded and its spend taken back, atomically). Returns (superseded, gateway event) id pairs."""

    def link_calls(self, items: Sequence[tuple[str, CallIds]],
                   claims_for: Callable[[CostEvent, Sequence[str] | None], Sequence[BudgetClaim]],
                   span_ids: Mapping[str, Sequence[str]] | None = None) -> list[tuple[str, str]]:
        """`link_call` for many events (event id, its ids) in one transaction."""

    def gateway_calls(self, response_ids: Sequence[str], trace_ids: Sequence[str]) -> Mapping[tuple[str, str], str]:
        """The gateway events of many calls: ("response", response id) / ("span", trace id + span id)
        -> event id."""

    def list_events(self, *, since: datetime | None = None, limit: int = 1000) -> list[CostEvent]:
        """Events since a time, newest first."""

    def count_events(self) -> int: ...

    def events_page(self, *, since: datetime | None = None, until: datetime | None = None,
                    after: tuple[datetime, str] | None = None, limit: int = 1000) -> list[CostEvent]:
        """Events with since <= ts < until, oldest first (ts, id), strictly after the (ts, id) `after`."""

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

    def spend_windows(self, windows: Sequence[tuple[datetime, datetime]], *, group_by: Sequence[str] = (),
                      where: Mapping[str, str] | None = None) -> list[list[SpendRow]]:
        """`spend(group_by=…, where=…, since=w[0], until=w[1])` for every window, in one round trip;
        the rows of window i at index i."""

    def denial_counts(self, *, since: datetime, until: datetime,
                      scope: Scope | None = None) -> dict[tuple[str, str], int]:
        """Denials in [since, until) by ('budget' | 'policy' | 'guard', name), within `scope`."""

    def rebuild_rollups(self) -> Mapping[str, int]:
        """Recompute the spend rollups from the cost events in one transaction; returns the row count
        of each rollup table. `spend` reads the rollups when every name it is asked for is rolled up,
        with results equal to a scan of the events."""


class RunLedger(Protocol):
    """Run trees (agent runs and their nested runs), business outcomes and economic SLO state."""

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

    def record_outcome(self, outcome: OutcomeRecord) -> bool:
        """Insert an outcome; False when its id was already stored (idempotent)."""

    def list_outcomes(self, *, outcome: str | None = None, since: datetime | None = None,
                      until: datetime | None = None) -> list[OutcomeRecord]: ...

    def put_slo_state(self, state: SloState) -> None:
        """Upsert the state of one SLO (last writer wins)."""

    def slo_states(self) -> list[SloState]: ...
