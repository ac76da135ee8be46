"""The JSON a webhook receives: Slack-compatible (`text` + `blocks`) plus a structured `costplane` part.

Slack (and Mattermost, Rocket.Chat, Discord's /slack endpoint) read `text`/`blocks` and ignore the
rest; a program reads `costplane`. Money in `data` stays integer nano-USD; `*_usd` strings are exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from costplane.core.notify import Notification
from costplane.money import format_usd

__all__ = ["slack_payload"]

_TITLES = {
    "budget_threshold": "Budget threshold passed",
    "soft_budget_exceeded": "Soft budget exceeded",
    "policy": "Policy notification",
    "forecast_exhaustion": "Budget forecast to run out before the period ends",
    "anomaly": "Spend anomaly",
    "slo_breach": "Economic SLO breached",
    "otlp_unpriced": "GenAI spans ingested without usage (unpriced)",
    "reconcile_drift": "Metered spend drifts from the provider's bill",
    "test": "Test alert",
}


def _value(value: Any) -> Any:
    if isinstance(value, str | int | bool | None):
        return value
    if isinstance(value, Mapping):
        return _plain(value)
    if isinstance(value, list | tuple):
        return [_value(v) for v in value]
    return str(value)


def _plain(data: Mapping[Any, Any]) -> dict[str, Any]:
    """JSON-plain copy of `data` (nested mappings and lists kept); every integer `*_nano` also as `*_usd`."""
    out: dict[str, Any] = {}
    for key, value in dict(data).items():
        name = str(key)
        out[name] = _value(value)
        if name.endswith("_nano") and isinstance(value, int) and not isinstance(value, bool):
            out[name[: -len("_nano")] + "_usd"] = format_usd(value)
    return out


def slack_payload(notification: Notification, dedup_key: str | None, raised_at: datetime) -> dict[str, Any]:
    title = _TITLES.get(notification.kind, notification.kind)
    text = f"costplane: {title} — {notification.subject}: {notification.message}"
    context = f"kind `{notification.kind}` · {raised_at.strftime('%Y-%m-%d %H:%M:%S UTC')}"
    if notification.decision_id:
        context += f" · decision `{notification.decision_id}`"
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": f"{title}: {notification.subject}"[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": notification.message}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
        "costplane": {
            "kind": notification.kind,
            "subject": notification.subject,
            "message": notification.message,
            "decision_id": notification.decision_id or None,
            "dedup_key": dedup_key,
            "raised_at": raised_at.isoformat(),
            "data": _plain(notification.data),
        },
    }
