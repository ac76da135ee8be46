"""Totals of a replay per scope (a policy, budget, team, agent or blueprint): shared by the request
and the launch sections of a replay report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from costplane.money import format_usd

__all__ = ["ScopeTotals", "table_json", "table_lines"]


@dataclass(slots=True)
class ScopeTotals:
    """Changed requests (or launches) and money saved within one scope."""

    requests: int = 0
    saved_nano: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, saved_nano: int) -> None:
        self.requests += 1
        self.saved_nano += saved_nano
        self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "saved_nano": self.saved_nano, "saved_usd": format_usd(self.saved_nano),
                "kinds": dict(sorted(self.kinds.items()))}


def _ordered(data: Mapping[str, ScopeTotals]) -> list[tuple[str, ScopeTotals]]:
    return sorted(data.items(), key=lambda kv: (-kv[1].saved_nano, kv[0]))


def table_json(data: Mapping[str, ScopeTotals]) -> dict[str, Any]:
    return {k: v.to_json() for k, v in _ordered(data)}


def table_lines(title: str, data: Mapping[str, ScopeTotals], unit: str = "requests") -> list[str]:
    """`title:` then one line per scope, most saved first; nothing for an empty table."""
    if not data:
        return []
    lines = [f"{title}:"]
    for key, totals in _ordered(data):
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(totals.kinds.items()))
        lines.append(f"  {key}: {totals.requests} {unit} ({kinds}), saved {format_usd(totals.saved_nano)} USD")
    return lines
