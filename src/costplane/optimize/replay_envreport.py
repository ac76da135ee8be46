"""The launch section of a replay report: each changed launch, and totals by kind, cause, blueprint
and team (see `optimize.replay_envs` for how launches are re-decided)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from costplane.money import format_usd
from costplane.optimize.replay_totals import ScopeTotals, table_json, table_lines

__all__ = ["LaunchChange", "LaunchReport"]


@dataclass(frozen=True, slots=True)
class LaunchChange:
    environment_id: str | None
    decision_id: str | None
    ts: datetime
    blueprint: str
    kind: str  # denied | needs_approval | budget_refused | changed
    cause: str  # the policy, budget or blueprint that made the change
    detail: str  # what would differ, in words
    recorded_nano: int
    replayed_nano: int
    team: str | None

    @property
    def saved_nano(self) -> int:
        return self.recorded_nano - self.replayed_nano

    def to_json(self) -> dict[str, Any]:
        return {"environment_id": self.environment_id, "decision_id": self.decision_id, "ts": self.ts.isoformat(),
                "blueprint": self.blueprint, "kind": self.kind, "cause": self.cause, "detail": self.detail,
                "recorded_nano": self.recorded_nano, "replayed_nano": self.replayed_nano,
                "saved_nano": self.saved_nano, "saved_usd": format_usd(self.saved_nano), "team": self.team}


@dataclass(slots=True)
class LaunchReport:
    launches: int = 0
    ran: int = 0
    recorded_nano: int = 0
    replayed_nano: int = 0
    at_stake_nano: int = 0  # cost of launches that would now wait for an approver
    newly_admitted: int = 0
    changes: list[LaunchChange] = field(default_factory=list)
    by_kind: dict[str, ScopeTotals] = field(default_factory=dict)
    by_cause: dict[str, ScopeTotals] = field(default_factory=dict)
    by_blueprint: dict[str, ScopeTotals] = field(default_factory=dict)
    by_team: dict[str, ScopeTotals] = field(default_factory=dict)

    @property
    def saved_nano(self) -> int:
        return self.recorded_nano - self.replayed_nano

    def record(self, change: LaunchChange) -> None:
        self.changes.append(change)
        for table, key in ((self.by_kind, change.kind), (self.by_cause, change.cause),
                           (self.by_blueprint, change.blueprint), (self.by_team, change.team or "(none)")):
            table.setdefault(key, ScopeTotals()).add(change.kind, change.saved_nano)

    def to_json(self, *, changes: int = 50) -> dict[str, Any]:
        return {
            "launches": self.launches, "ran": self.ran, "changed": len(self.changes),
            "newly_admitted": self.newly_admitted, "recorded_nano": self.recorded_nano,
            "replayed_nano": self.replayed_nano, "saved_nano": self.saved_nano,
            "saved_usd": format_usd(self.saved_nano),
            "needs_approval_at_stake_nano": self.at_stake_nano,
            "by_kind": table_json(self.by_kind), "by_policy_or_budget": table_json(self.by_cause),
            "by_blueprint": table_json(self.by_blueprint), "by_team": table_json(self.by_team),
            "changes": [c.to_json() for c in sorted(self.changes, key=lambda c: (-c.saved_nano, c.ts))[:changes]],
        }

    def text_lines(self) -> list[str]:
        lines = [f"environment launches: {self.launches} replayed ({self.ran} ran), recorded cost "
                 f"{format_usd(self.recorded_nano)} USD -> replayed {format_usd(self.replayed_nano)} USD: saved "
                 f"{format_usd(self.saved_nano)} USD",
                 f"changed {len(self.changes)} launches; {self.newly_admitted} recorded denials would be admitted"
                 + (f"; {format_usd(self.at_stake_nano)} USD would wait for approval" if self.at_stake_nano else "")]
        for title, table in (("launches by change", self.by_kind), ("launches by policy / budget / blueprint",
                             self.by_cause), ("launches by blueprint", self.by_blueprint),
                             ("launches by team", self.by_team)):
            lines += table_lines(title, table, "launches")
        return lines
