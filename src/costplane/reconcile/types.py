"""What a bill import yields and what reconciliation reports: plain immutable values.

Money on the billed side is an exact `Decimal` of USD (the providers bill sub-nano fractions, so
nothing is rounded on the way in); the ledger's integer nano-USD converts to it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

__all__ = ["MONEY", "TOKENS", "BillSource", "BilledLine", "ReconcileError"]

MONEY = "money"  # a cost report: amounts billed
TOKENS = "tokens"  # a usage report: token counts billed


class ReconcileError(ValueError):
    """A bill file, option or setting that cannot be used; the message names the file and field."""


@dataclass(frozen=True, slots=True)
class BilledLine:
    """One line of a bill, already on a day in the report's zone and under canonical names.

    `model` / `project` are None when the bill does not break spend down by them (the ledger side is
    then rolled up to the same grain); a bill that does break down but has no value for a line carries
    a label instead (e.g. the cost type of a web-search charge)."""

    day: date
    provider: str
    model: str | None
    project: str | None
    cost: Decimal = Decimal(0)  # USD, money sources
    input_tokens: int = 0  # token sources: every prompt token incl. cache reads and writes
    output_tokens: int = 0
    requests: int = 0
    source: str = ""  # file and JSON path / line of the line, for the report
    raw_model: str | None = None  # the bill's own name before normalisation


@dataclass(slots=True)
class BillSource:
    """Everything one bill file (or one fetched report) gave: its lines and the periods it covers.

    A period a bill covers with no line for a provider means "billed nothing then" — ledger spend in it
    is unmatched. `covered` maps provider -> day -> the [start, end) periods (UTC) billed on that day:
    the whole day for a daily bucket, single hours for hourly ones."""

    kind: str  # MONEY | TOKENS
    label: str  # openai-costs | openai-usage | anthropic-cost | anthropic-usage | focus
    path: str
    lines: list[BilledLine] = field(default_factory=list)
    covered: dict[str, dict[date, list[tuple[datetime, datetime]]]] = field(default_factory=dict)
    has_model: bool = False
    has_project: bool = False
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> rows not reconciled (e.g. Tax)

    def cover(self, provider: str, day: date, start: datetime, end: datetime) -> None:
        self.covered.setdefault(provider, {}).setdefault(day, []).append((start, end))
