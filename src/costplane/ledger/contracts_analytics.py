"""Contracts of the read-only analytics: the waste detectors' and the assessment's grouped reads
(typed rows, `optimizerows.py`), and policy replay's keyset pages.

Nothing here writes or needs a transaction across statements; a backend may answer from a
replica. Times are integer microseconds (UTC), money integer nano-USD. A row's meaning is
documented on the implementation (`optimizequeries.py`, `replayqueries.py`); the conformance
suite pins each figure on a small ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from costplane.ledger.optimizerows import (
    AgentDayRow,
    AgentRunsRow,
    AssessDecisionRow,
    AssessSpendRow,
    CacheableRow,
    DecisionEventRow,
    EmbeddingRow,
    LegacyCacheRow,
    LoopSummaryRow,
    ModelCostRow,
    ModelGroupRow,
    ModelOutcomeRunsRow,
    ModelUsageRow,
    OutcomeRow,
    RunSizeRow,
    RunStepsRow,
)
from costplane.ledger.types import DecisionRecord

__all__ = ["AnalyticsReads", "ReplayReads"]


class AnalyticsReads(Protocol):
    """The waste detectors' grouped reads and the capability assessment's shares."""

    def optimize_model_groups(self, since_us: int, until_us: int, max_input: int,
                              max_output: int) -> list[ModelGroupRow]: ...

    def optimize_model_rows(self, since_us: int, until_us: int, agent: str | None, provider: str, model: str,
                            tier: str | None, team: str | None, *, max_input: int | None = None,
                            max_output: int | None = None) -> list[ModelUsageRow]: ...

    def optimize_model_costs(self, since_us: int, until_us: int, agent: str | None, provider: str, model: str,
                             tier: str | None, team: str | None, femto: Sequence[int], *,
                             max_input: int | None = None, max_output: int | None = None,
                             by_experiment: bool = False) -> list[ModelCostRow]: ...

    def optimize_agents(self, since_us: int, until_us: int) -> list[str]: ...

    def optimize_agent_runs(self, since_us: int, until_us: int, agent: str) -> AgentRunsRow: ...

    def optimize_loop_summary(self, since_us: int, until_us: int, agent: str) -> LoopSummaryRow: ...

    def optimize_run_steps(self, since_us: int, until_us: int, agent: str) -> list[RunStepsRow]: ...

    def optimize_run_sizes(self, since_us: int, until_us: int, agent: str) -> list[RunSizeRow]: ...

    def optimize_run_excess(self, since_us: int, until_us: int, agent: str, baseline: int) -> int: ...

    def optimize_agent_days(self, since_us: int, until_us: int, agent: str) -> list[AgentDayRow]: ...

    def optimize_cacheable(self, since_us: int, until_us: int) -> list[CacheableRow]: ...

    def optimize_cache_legacy(self, since_us: int, until_us: int) -> list[LegacyCacheRow]: ...

    def optimize_decision_events(self, since_us: int, until_us: int,
                                 decision_ids: Sequence[str]) -> list[DecisionEventRow]: ...

    def optimize_embeddings(self, since_us: int, until_us: int) -> list[EmbeddingRow]: ...

    def optimize_model_outcome_runs(self, since_us: int, until_us: int, agent: str, provider: str,
                                    model: str) -> ModelOutcomeRunsRow: ...

    def optimize_outcomes(self, since_us: int, until_us: int) -> list[OutcomeRow]: ...

    def assess_spend(self, since_us: int) -> AssessSpendRow: ...

    def assess_decisions(self, since_us: int) -> list[AssessDecisionRow]: ...


class ReplayReads(Protocol):
    """Policy replay's keyset pages over the decisions and events it re-evaluates."""

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
