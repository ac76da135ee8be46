"""The drift alert: one `reconcile_drift` notification to every webhook subscribed to that kind, in the
same Slack-compatible JSON as every costplane alert, raised once per distinct set of breaching lines
(the store's alert claims de-duplicate repeated runs over the same bill)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from costplane.alerts.payload import slack_payload
from costplane.alerts.webhook import WebhookError, send_webhook
from costplane.config import AlertsConfig
from costplane.core.notify import Notification
from costplane.ledger.store import Store
from costplane.reconcile.run import Reconciliation
from costplane.reconcile.types import MONEY

__all__ = ["KIND", "drift_notification", "send_drift_alert"]

KIND = "reconcile_drift"


def drift_notification(result: Reconciliation) -> Notification:
    breaches = result.breaches
    parts = []
    for line in breaches[:10]:
        what = " / ".join(x for x in (line.provider, line.model, line.project) if x)
        unit = "USD" if line.kind == MONEY else "tokens"
        pct = "—" if line.drift_pct is None else f"{line.drift_pct}%"
        parts.append(f"{line.day} {what}: metered {line.metered:f}, billed {line.billed:f} {unit} "
                     f"(drift {line.drift:f}, {pct}, {line.status})")
    more = f" … and {len(breaches) - 10} more" if len(breaches) > 10 else ""
    message = f"{len(breaches)} line(s) past the drift threshold: " + "; ".join(parts) + more
    data: dict[str, Any] = {
        "breaches": [{"day": line.day.isoformat(), "kind": line.kind, "provider": line.provider,
                      "model": line.model, "project": line.project, "metered": f"{line.metered:f}",
                      "billed": f"{line.billed:f}", "drift": f"{line.drift:f}",
                      "drift_pct": None if line.drift_pct is None else f"{line.drift_pct:f}", "status": line.status}
                     for line in breaches],
        "thresholds": result.to_json()["thresholds"],
    }
    return Notification(KIND, "reconcile", message, "", data)


def _dedup_key(notification: Notification) -> str:
    digest = hashlib.sha256(repr(notification.data["breaches"]).encode()).hexdigest()[:24]
    return f"{KIND}:{digest}"


def send_drift_alert(result: Reconciliation, config: AlertsConfig, store: Store | None, now: datetime, *,
                     send: Callable[[str, Mapping[str, Any], float], int] = send_webhook) -> list[str]:
    """Deliver the alert (when any line breaches) to each subscribed webhook; returns one outcome per
    webhook ("<url>: HTTP 200", "<url>: unreachable …", or that it was already raised)."""
    if not result.breaches:
        return []
    hooks = [hook for hook in config.webhooks if KIND in hook.kinds]
    if not hooks:
        return []
    notification = drift_notification(result)
    key = _dedup_key(notification)
    if store is not None and not store.claim_alert(key, KIND, notification.subject, now):
        return [f"already raised ({key}): not sent again"]
    payload = slack_payload(notification, key, now)
    outcomes = []
    for hook in hooks:
        try:
            outcomes.append(f"{hook.url}: HTTP {send(hook.url, payload, float(hook.timeout))}")
        except WebhookError as exc:
            outcomes.append(f"{hook.url}: unreachable: {exc}")
    return outcomes
