"""Records of run trees, outcomes and economic-SLO state (schema version 5).

Plain immutable values like `ledger.types`: aware UTC datetimes, exact money
(nano-USD ints, Decimal values). LLM calls are not nodes of their own — they are
cost events carrying `run` (and `step`, `tool`); a node links its own event by id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from costplane.attribution.context import Context

__all__ = ["NODE_KINDS", "OutcomeRecord", "RunActivity", "RunNode", "SloState"]

#: run | pipeline | agent: a root; step | tool | llm | span | gpu | …: below one
NODE_KINDS: tuple[str, ...] = ("run", "pipeline", "agent", "step", "tool", "llm", "span", "gpu")


@dataclass(frozen=True, slots=True)
class RunNode:
    """One node of a run tree. The root of a run has `id == run` and no parent."""

    id: str
    run: str
    kind: str
    name: str
    started_at: datetime
    parent_id: str | None = None
    ended_at: datetime | None = None
    status: str = "running"  # running | ok | error | stopped
    context: Context = field(default_factory=Context)
    event_id: str | None = None  # the node's own cost event (an ingested LLM span, a GPU job)
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """A business result (`ticket_resolved`, value 1) and the context that produced it."""

    id: str
    ts: datetime
    outcome: str
    value: Decimal
    context: Context = field(default_factory=Context)


@dataclass(frozen=True, slots=True)
class SloState:
    """The last evaluation of one economic SLO; `actions` are the slo.breach policy effects
    in force while it is breached: [{"effect": "route", "model": …, "policy": …}, …]."""

    name: str
    breached: bool
    updated_at: datetime
    since: datetime | None = None
    scope: Mapping[str, str] = field(default_factory=dict)  # dimension -> value the SLO covers
    measured: Mapping[str, Any] = field(default_factory=dict)
    actions: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class RunActivity:
    """What the ledger saw of one run id outside its nodes: its cost events and the decisions that
    carried it (`ctx.run`), aggregated in one grouped query (`Store.run_activity`).

    `first_at` is the earliest decision or event start (an event starts `latency_ms` before its
    `ts`), `last_at` the latest decision or event. Decisions with effect `observed` (spend recorded
    after the fact) are not admissions and are left out."""

    run: str
    first_at: datetime
    last_at: datetime
    events: int = 0
    cost_nano: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    decisions: int = 0
    agent: str | None = None
    pipeline: str | None = None
    experiment: str | None = None
    last_event_at: datetime | None = None
    last_error_at: datetime | None = None  # the latest event with status `error`
    last_unadmitted_at: datetime | None = None  # the latest event recorded without a reservation (SDK, OTLP)
