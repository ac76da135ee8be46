"""The de-duplication key of an alert: what makes two notifications "the same alert".

* budget_threshold — budget, partition, window start, percent: once per threshold crossing
  per budget window (a rolling window's start moves with its buckets);
* soft_budget_exceeded — budget, partition, window start, which limit: once per window;
* forecast_exhaustion — budget, partition, window start: once per calendar period;
* policy — policy name and a time slot of `policy_repeat` seconds: a notify policy matches
  on every request, so it alerts at most once per slot;
* anomaly — scope and UTC day: once per anomalous day of all spend or of a team;
* slo_breach — SLO and the instant it turned breached: once per breach episode;
* otlp_unpriced — service/model and UTC day: GenAI spans ingested without usage or content, once a day;
* test — never de-duplicated.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from costplane.core.notify import Notification
from costplane.policy.types import BudgetSpec

__all__ = ["dedup_key"]


def _window_start(budgets: Mapping[str, BudgetSpec], name: str, now: datetime) -> str:
    spec = budgets.get(name)
    return "?" if spec is None else str(spec.window.bounds(now)[0])


def dedup_key(notification: Notification, budgets: Mapping[str, BudgetSpec], now: datetime,
              policy_repeat: int) -> str | None:
    """The key under which `notification` is claimed in the store; None = never de-duplicated."""
    n, data = notification, notification.data
    partition = str(data.get("partition") or "")
    if n.kind == "budget_threshold":
        window = _window_start(budgets, n.subject, now)
        return f"budget_threshold|{n.subject}|{partition}|{window}|{data.get('percent')}"
    if n.kind == "soft_budget_exceeded":
        window = _window_start(budgets, n.subject, now)
        return f"soft_budget_exceeded|{n.subject}|{partition}|{window}|{data.get('limit', 'amount')}"
    if n.kind == "forecast_exhaustion":
        window = data.get("window_start", _window_start(budgets, n.subject, now))
        return f"forecast_exhaustion|{n.subject}|{partition}|{window}"
    if n.kind == "policy":
        return f"policy|{n.subject}|{int(now.timestamp()) // max(1, policy_repeat)}"
    if n.kind == "anomaly" and data.get("day"):
        return f"anomaly|{data.get('scope_kind')}:{data.get('scope')}|{data['day']}"
    if n.kind == "slo_breach" and data.get("breached_since"):
        return f"slo_breach|{n.subject}|{data['breached_since']}"
    if n.kind == "otlp_unpriced" and data.get("day"):
        return f"otlp_unpriced|{n.subject}|{data['day']}"
    if n.kind == "test":
        return None
    return f"{n.kind}|{n.subject}|{n.decision_id or uuid.uuid4().hex}"
