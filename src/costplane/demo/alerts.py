"""Collects what the core notifies (notify policies, soft budgets over their limit, alert
thresholds) so the demo can show it in its summary instead of log lines under the live view."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from costplane.core.notify import Notification

__all__ = ["AlertLine", "AlertLog"]


@dataclass(frozen=True, slots=True)
class AlertLine:
    kind: str  # policy | soft_budget_exceeded | budget_threshold
    subject: str  # the policy or budget
    count: int
    latest: str  # the latest message, verbatim


class AlertLog:
    """A `Notifier`: the gateway thread writes, the summary reads a copy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: dict[tuple[str, str], AlertLine] = {}

    def notify(self, notification: Notification) -> None:
        key = (notification.kind, notification.subject)
        with self._lock:
            seen = self._lines.get(key)
            self._lines[key] = AlertLine(notification.kind, notification.subject,
                                         (seen.count if seen else 0) + 1, notification.message)

    def lines(self) -> list[AlertLine]:
        with self._lock:
            return sorted(self._lines.values(), key=lambda line: (line.kind, line.subject))
