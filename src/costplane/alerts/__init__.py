"""Alerts: Slack-compatible webhooks for budget thresholds, soft budgets, notify
policies and exhaustion forecasts, de-duplicated in the store and delivered off the request path."""

from __future__ import annotations

from costplane.alerts.dedup import dedup_key
from costplane.alerts.forecast import forecast_exhaustions
from costplane.alerts.payload import slack_payload
from costplane.alerts.webhook import CompositeNotifier, WebhookError, WebhookNotifier, send_webhook

__all__ = [
    "CompositeNotifier",
    "WebhookError",
    "WebhookNotifier",
    "dedup_key",
    "forecast_exhaustions",
    "send_webhook",
    "slack_payload",
]
