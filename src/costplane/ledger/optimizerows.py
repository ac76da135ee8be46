"""Typed rows of the analytics reads (`optimizequeries.py`): the waste detectors and the assessment.

Every row is a NamedTuple, so it is still a compact tuple (no per-row dict, positional unpacking
keeps working) but its fields have names and types. Rows of plain columns, read by the million
(usage, cacheable requests, embeddings, decision events, outcomes, run sizes), are made from the
database row as it is (`_make`: the columns have the same Python types in both dialects; as cheap
as a plain tuple). Rows of aggregates use `of`, which normalises what the two dialects return
differently: PostgreSQL sums BIGINT into NUMERIC (`Decimal`), an aggregate over no rows is NULL;
here those become `int`, `float` and 0. Times are integer microseconds (UTC), money integer nano-USD.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import orjson

__all__ = [
    "AgentDayRow",
    "AgentRunsRow",
    "AssessDecisionRow",
    "AssessSpendRow",
    "CacheableRow",
    "DecisionEventRow",
    "EmbeddingRow",
    "LegacyCacheRow",
    "LoopSummaryRow",
    "ModelCostRow",
    "ModelGroupRow",
    "ModelOutcomeRunsRow",
    "ModelUsageRow",
    "OutcomeRow",
    "RunSizeRow",
    "RunStepsRow",
]


def _int(value: Any) -> int:
    return int(value or 0)


def _float(value: Any) -> float:
    return float(value or 0)


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


class ModelGroupRow(NamedTuple):
    """One (agent, provider, model, tier, team) group of successful LLM events: its calls, the calls
    within the short limits asked for, and the float screen sums of x = time in the window (0..1)
    and y = input tokens."""

    agent: str | None
    provider: str
    model: str
    tier: str | None
    team: str | None
    calls: int
    short_calls: int
    sum_x: float
    sum_y: float
    sum_xx: float
    sum_xy: float
    sum_yy: float

    @classmethod
    def of(cls, r: Sequence[Any]) -> ModelGroupRow:
        return cls(_opt(r[0]), str(r[1]), str(r[2]), _opt(r[3]), _opt(r[4]), _int(r[5]), _int(r[6]),
                   _float(r[7]), _float(r[8]), _float(r[9]), _float(r[10]), _float(r[11]))


class ModelUsageRow(NamedTuple):
    """One successful LLM event of a model group (the columns the detectors price)."""

    ts: int
    id: str
    experiment: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost_nano: int


class ModelCostRow(NamedTuple):
    """A model group's calls (one experiment's, or all of them) summed: recorded cost, cost at flat
    rates, and the largest token counts (to check the SQL arithmetic stayed exact)."""

    experiment: str | None
    calls: int
    cost_nano: int
    priced_nano: int
    max_input_tokens: int
    max_output_tokens: int

    @classmethod
    def of(cls, r: Sequence[Any]) -> ModelCostRow:
        return cls(_opt(r[0]), _int(r[1]), _int(r[2]), _int(r[3]), _int(r[4]), _int(r[5]))


class AgentRunsRow(NamedTuple):
    """One agent's runs in the window: how many, their calls, the float screen sums of x = a run's
    first time in the window and y = its calls, the most distinct requests in one run, duplicate
    requests and the runs with a duplicate."""

    runs: int
    calls: int
    sum_x: float
    sum_y: float
    sum_xx: float
    sum_xy: float
    sum_yy: float
    max_distinct: int
    duplicates: int
    repeating_runs: int

    @classmethod
    def of(cls, r: Sequence[Any]) -> AgentRunsRow:
        return cls(_int(r[0]), _int(r[1]), _float(r[2]), _float(r[3]), _float(r[4]), _float(r[5]), _float(r[6]),
                   _int(r[7]), _int(r[8]), _int(r[9]))


class LoopSummaryRow(NamedTuple):
    """One agent's repeated requests within a run: duplicates, their cost, the longest repeat, the
    runs that repeat."""

    duplicates: int
    duplicate_cost_nano: int
    longest_repeat: int
    repeating_runs: int

    @classmethod
    def of(cls, r: Sequence[Any]) -> LoopSummaryRow:
        return cls(_int(r[0]), _int(r[1]), _int(r[2]), _int(r[3]))


class RunStepsRow(NamedTuple):
    """How many of an agent's runs made `calls` calls."""

    calls: int
    runs: int

    @classmethod
    def of(cls, r: Sequence[Any]) -> RunStepsRow:
        return cls(_int(r[0]), _int(r[1]))


class RunSizeRow(NamedTuple):
    run: str
    first_ts: int
    calls: int


class AgentDayRow(NamedTuple):
    """An agent's charged requests in runs on one day of the window (day 0 starts at `since`)."""

    day: int
    calls: int
    cost_nano: int

    @classmethod
    def of(cls, r: Sequence[Any]) -> AgentDayRow:
        return cls(int(r[0]), _int(r[1]), _int(r[2]))


class CacheableRow(NamedTuple):
    """A cacheable request: its decision, the scope it is grouped under, its cache hash and the cost
    of its events."""

    ts: int
    id: str
    dimension: str  # "agent" | "team"
    value: str
    cache_hash: str
    cost_nano: int


class LegacyCacheRow(NamedTuple):
    """An admitted decision recorded before the cache hash existed, its JSON input and result decoded
    (an absent or null document is an empty mapping)."""

    ts: int
    id: str
    agent: str | None
    team: str | None
    input: Mapping[str, Any]
    result: Mapping[str, Any]

    @classmethod
    def of(cls, r: Sequence[Any]) -> LegacyCacheRow:
        return cls(int(r[0]), str(r[1]), _opt(r[2]), _opt(r[3]), _document(r[4]), _document(r[5]))


class DecisionEventRow(NamedTuple):
    decision_id: str
    ts: int
    id: str
    kind: str
    status: str
    cost_nano: int
    request_hash: str | None


class EmbeddingRow(NamedTuple):
    """A successful embedding event with a request hash."""

    ts: int
    id: str
    agent: str | None
    pipeline: str | None
    team: str | None
    model: str
    request_hash: str
    cost_nano: int


class ModelOutcomeRunsRow(NamedTuple):
    """Runs of an agent with a successful call of a model, and those of them with an outcome."""

    runs: int
    with_outcome: int

    @classmethod
    def of(cls, r: Sequence[Any]) -> ModelOutcomeRunsRow:
        return cls(_int(r[0]), _int(r[1]))


class OutcomeRow(NamedTuple):
    agent: str
    outcome: str
    ts: int
    value: str  # exact decimal text


class AssessSpendRow(NamedTuple):
    """The capability assessment's spend shares: events, spend, saved, and the spend that carries a
    decision, a team, full attribution (team + project/owner + run/agent), a run."""

    events: int
    cost_nano: int
    saved_nano: int
    with_decision_nano: int
    with_team_nano: int
    attributed_nano: int
    with_run_nano: int

    @classmethod
    def of(cls, r: Sequence[Any]) -> AssessSpendRow:
        return cls(*(_int(v) for v in r[:7]))


class AssessDecisionRow(NamedTuple):
    hook: str
    effect: str
    decisions: int

    @classmethod
    def of(cls, r: Sequence[Any]) -> AssessDecisionRow:
        return cls(str(r[0]), str(r[1]), _int(r[2]))


def _document(value: Any) -> Mapping[str, Any]:
    """A JSON column as a mapping: text (SQLite) or already decoded (PostgreSQL JSONB)."""
    decoded = orjson.loads(value) if isinstance(value, str | bytes | bytearray) else value
    return decoded if isinstance(decoded, dict) else {}
