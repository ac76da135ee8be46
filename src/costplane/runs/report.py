"""Unit economics: cost per outcome by outcome type × agent × model × tier (× day).

For one outcome type (e.g. `ticket_resolved`) and a time range:

* **cost** of a group = every cost event of the group in the range — runs that produced no
  outcome included (that is the waste), as are events outside any run;
* **outcomes** = the sum of the outcome values recorded in the range; an outcome lands in
  the group of its own context (agent, tier), and its model is the model its run spent most
  on (an outcome of a run with no cost has model "");
* **waste** = the part of the cost spent by runs (and run-less events) without this outcome;
* **cost per outcome** = cost / outcomes (None when there were no outcomes), exact Decimal USD.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from costplane.ledger.store import Store
from costplane.money import format_usd, nano_to_decimal

__all__ = ["GROUPS", "OutcomeRow", "cost_per_outcome"]

GROUPS: tuple[str, ...] = ("agent", "model", "tier")
_DAY_US = 86_400


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    outcome: str
    group: Mapping[str, str | None]
    bucket: datetime | None
    cost_nano: int
    outcomes: Decimal
    runs: int
    runs_without_outcome: int
    waste_nano: int

    @property
    def cost_per_outcome(self) -> Decimal | None:
        """USD per outcome, rounded half-up to the nano-dollar; None without outcomes."""
        if not self.outcomes:
            return None
        return (nano_to_decimal(self.cost_nano) / self.outcomes).quantize(Decimal("1e-9"), rounding=ROUND_HALF_UP)

    def to_json(self) -> dict[str, Any]:
        per = self.cost_per_outcome
        return {"outcome": self.outcome, "group": dict(self.group),
                "bucket": self.bucket.isoformat() if self.bucket else None,
                "cost_usd": format_usd(self.cost_nano), "cost_nano": self.cost_nano, "outcomes": str(self.outcomes),
                "cost_per_outcome_usd": None if per is None else f"{per.normalize():f}",
                "runs": self.runs, "runs_without_outcome": self.runs_without_outcome,
                "waste_usd": format_usd(self.waste_nano), "waste_nano": self.waste_nano}


def _day(ts: datetime) -> datetime:
    seconds = int(ts.timestamp()) // _DAY_US * _DAY_US
    return datetime.fromtimestamp(seconds, tz=UTC)


def cost_per_outcome(store: Store, outcome: str, *, since: datetime | None = None, until: datetime | None = None,
                     group_by: Sequence[str] = GROUPS, where: Mapping[str, str] | None = None,
                     bucket: str | None = None) -> list[OutcomeRow]:
    """Cost per `outcome`, grouped by `group_by` (any of agent, model, tier and other context
    dimensions) and optionally by `bucket="day"`; `where` filters on the same names."""
    if bucket not in (None, "day"):
        raise ValueError(f"bucket must be None or 'day', got {bucket!r}")
    dims = [d for d in dict.fromkeys(group_by) if d != "run"]
    rows = store.spend(group_by=["run", *dims], since=since, until=until, where=where, bucket=bucket)
    records = [o for o in store.list_outcomes(outcome=outcome, since=since, until=until)
               if all(o.context.get(k) == v for k, v in (where or {}).items() if k != "model")]
    produced: dict[str, Decimal] = defaultdict(Decimal)
    for record in records:
        if record.context.run:
            produced[record.context.run] += record.value
    dominant: dict[str, tuple[int, str]] = {}
    run_groups: dict[str, dict[str, str | None]] = {}
    for row in rows:
        run = row.group.get("run")
        if run:
            model = str(row.group.get("model") or "")
            if run not in dominant or row.cost_nano > dominant[run][0]:
                dominant[run] = (row.cost_nano, model)
            run_groups.setdefault(run, {d: row.group.get(d) for d in dims})
    Key = tuple[tuple[str | None, ...], datetime | None]
    cost: dict[Key, int] = defaultdict(int)
    waste: dict[Key, int] = defaultdict(int)
    runs: dict[Key, set[str]] = defaultdict(set)
    idle: dict[Key, set[str]] = defaultdict(set)
    count: dict[Key, Decimal] = defaultdict(Decimal)
    for row in rows:
        key: Key = (tuple(row.group.get(d) for d in dims), row.bucket)
        run = row.group.get("run")
        cost[key] += row.cost_nano
        if run:
            runs[key].add(run)
        if not run or not produced.get(run):
            waste[key] += row.cost_nano
            if run:
                idle[key].add(run)
    for record in records:
        run = record.context.run
        values: list[str | None] = []
        for d in dims:
            if d == "model":
                values.append(dominant[run][1] if run and run in dominant else "")
            else:
                values.append(record.context.get(d) or (run_groups.get(run or "", {}).get(d)))
        count[(tuple(values), _day(record.ts) if bucket else None)] += record.value
    keys = sorted(set(cost) | set(count), key=lambda k: (k[1] or datetime.min.replace(tzinfo=UTC),
                                                         tuple(v or "" for v in k[0])))
    return [OutcomeRow(outcome, dict(zip(dims, k[0], strict=True)), k[1], cost[k], count[k], len(runs[k]),
                       len(idle[k]), waste[k]) for k in keys]
