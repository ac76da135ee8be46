"""Notifications the core raises: notify policies, soft budgets over their limit, alert thresholds.

The core hands each one to a Notifier. The default logs it at INFO to the
`costplane.notify` logger (one line, key=value); webhooks and the dashboard
plug in here later without touching the core.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from costplane.ledger.types import ClaimState
from costplane.money import format_usd
from costplane.policy.types import BudgetSpec

__all__ = ["LoggingNotifier", "Notification", "Notifier", "crossed_alerts"]


@dataclass(frozen=True, slots=True)
class Notification:
    kind: str  # policy | soft_budget_exceeded | budget_threshold
    subject: str  # the policy or budget name
    message: str
    decision_id: str
    data: Mapping[str, Any] = field(default_factory=dict)


class Notifier(Protocol):
    def notify(self, notification: Notification) -> None: ...


class LoggingNotifier:
    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("costplane.notify")

    def notify(self, notification: Notification) -> None:
        self._log.info("%s %s: %s (decision %s)", notification.kind, notification.subject,
                          notification.message, notification.decision_id)


def crossed_alerts(states: Iterable[ClaimState], budgets: Mapping[str, BudgetSpec], cost_nano: int,
                   decision_id: str) -> list[Notification]:
    """Alert thresholds (percent of a dollar limit) that this settlement's cost crossed."""
    out: list[Notification] = []
    for state in states:
        spec = budgets.get(state.budget)
        if spec is None or not spec.alerts or not state.limit_nano or cost_nano <= 0:
            continue
        after = state.spent_nano
        before = after - cost_nano
        for percent in spec.alerts:
            mark = state.limit_nano * percent // 100
            if before < mark <= after:
                scope = f" [{state.partition}]" if state.partition else ""
                out.append(Notification(
                    "budget_threshold", state.budget,
                    f"budget {state.budget!r}{scope} passed {percent}%: spent {format_usd(after)} of "
                    f"{format_usd(state.limit_nano)} USD", decision_id,
                    {"percent": percent, "partition": state.partition, "spent_nano": after,
                     "limit_nano": state.limit_nano},
                ))
    return out
