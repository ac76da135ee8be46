"""Spend anomaly alerts: the latest complete UTC day(s) scanned against each scope's seasonal baseline.

The detection is `optimize.anomaly.detect_anomalies` (all spend, and each team; a day is an anomaly
when its excess breaks the weekday-seasonal baseline; root causes per (team, agent, model) ranked by
their dollar excess). The spend is read as daily sums per (team, agent, model) from `Store.spend`
(one aggregate query, not a scan of the events): the detection only sums costs per UTC day and per
cell, so the daily sums give exactly the result the individual events would. One `anomaly`
notification per anomalous (scope, day); the webhook notifier de-duplicates on that pair.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from costplane.attribution.context import Context
from costplane.core.notify import Notification
from costplane.ledger.store import Store
from costplane.ledger.types import CostEvent
from costplane.money import format_usd
from costplane.optimize.anomaly import Anomaly, AnomalySettings, detect_anomalies

__all__ = ["ANOMALY_DAYS", "anomaly_alerts", "daily_spend"]

#: complete UTC days scanned by each run (the latest two: a day stays covered for a day after it ends,
#: so late-ingested spend or a server down at midnight still raises its alert)
ANOMALY_DAYS = 2


def daily_spend(store: Store, since: datetime, until: datetime) -> list[CostEvent]:
    """The spend in [since, until) as one synthetic event per UTC day and (team, agent, model)."""
    rows = store.spend(group_by=("team", "agent", "model"), since=since, until=until, bucket="day")
    out: list[CostEvent] = []
    for index, row in enumerate(rows):
        if row.bucket is None or row.cost_nano == 0:
            continue
        ts = row.bucket if row.bucket.tzinfo is not None else row.bucket.replace(tzinfo=UTC)
        context = Context(team=row.group.get("team") or None, agent=row.group.get("agent") or None)
        out.append(CostEvent(id=f"day_{index}", ts=ts, context=context, provider="",
                             model=row.group.get("model") or "", cost_nano=row.cost_nano))
    return out


def anomaly_alerts(store: Store, now: datetime, *, days: int = ANOMALY_DAYS,
                   settings: AnomalySettings | None = None) -> list[Notification]:
    """`anomaly` notifications of the `days` complete UTC days before `now`, largest excess first."""
    settings = settings or AnomalySettings()
    today = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
    since = today - timedelta(days=days)
    history = daily_spend(store, since - timedelta(days=settings.baseline_days), today)
    return [_notification(a) for a in detect_anomalies(history, since, today, settings)]


def _scope_name(anomaly: Anomaly) -> str:
    kind, value = anomaly.scope
    return "all spend" if kind == "all" else f"{kind} {value}"


def _notification(anomaly: Anomaly) -> Notification:
    causes = "; ".join(f"team={c.team} agent={c.agent} model={c.model} +{format_usd(c.excess_nano)} USD"
                       for c in anomaly.causes) or "none above their share"
    message = (f"{_scope_name(anomaly)} spent {format_usd(anomaly.actual_nano)} USD on {anomaly.day.isoformat()} "
               f"(UTC), expected {format_usd(anomaly.expected_nano)} USD: +{format_usd(anomaly.excess_nano)} USD "
               f"({anomaly.sigma:.1f} sigma). Root causes: {causes}")
    subject = "all" if anomaly.scope[0] == "all" else f"{anomaly.scope[0]}={anomaly.scope[1]}"
    return Notification("anomaly", subject, message, "", {
        "scope_kind": anomaly.scope[0], "scope": anomaly.scope[1], "day": anomaly.day.isoformat(),
        "actual_nano": anomaly.actual_nano, "expected_nano": anomaly.expected_nano,
        "excess_nano": anomaly.excess_nano, "sigma": f"{anomaly.sigma:.1f}",
        "root_causes": [{"team": c.team, "agent": c.agent, "model": c.model, "actual_nano": c.actual_nano,
                         "expected_nano": c.expected_nano, "excess_nano": c.excess_nano}
                        for c in anomaly.causes],
    })
