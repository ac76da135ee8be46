"""What alerts add to the server: background jobs over the application's webhook notifier, which the
composition root (`Application`) built into the one notifier every part uses: delivery every 0.25 s,
exhaustion forecasts every `alerts.forecast_interval`, spend anomaly scans every
`alerts.anomaly_interval`. SLO breaches and environment notices reach the webhooks the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from costplane.alerts.anomaly import anomaly_alerts
from costplane.alerts.forecast import forecast_exhaustions
from costplane.alerts.webhook import WebhookNotifier
from costplane.app import Application

__all__ = ["DRAIN_INTERVAL", "alerts_parts", "install_webhooks", "run_anomalies", "run_forecasts"]

DRAIN_INTERVAL = 0.25  # seconds between delivery rounds

Job = tuple[float, Callable[[], Awaitable[object]]]


def install_webhooks(application: Application) -> WebhookNotifier | None:
    """The application's webhook notifier (already part of its one notifier); None when no webhook
    is configured."""
    return application.webhooks


def run_forecasts(application: Application, now: datetime | None = None) -> int:
    """Raise a notification for every calendar budget forecast to run out this period; returns how many
    (each is de-duplicated per window by the webhook notifier)."""
    found = forecast_exhaustions(application.store, application.bundle.budgets, now or datetime.now(UTC),
                                 min_elapsed=application.config.alerts.forecast_min_elapsed)
    for notification in found:
        application.notifier.notify(notification)
    return len(found)


def run_anomalies(application: Application, now: datetime | None = None) -> int:
    """Raise a notification for every spend anomaly of the latest complete UTC days; returns how many
    (each is de-duplicated per scope and day by the webhook notifier)."""
    found = anomaly_alerts(application.store, now or datetime.now(UTC))
    for notification in found:
        application.notifier.notify(notification)
    return len(found)


def alerts_parts(application: Application) -> list[Job]:
    webhooks = install_webhooks(application)
    if webhooks is None:
        return []
    interval = float(application.config.alerts.forecast_interval)
    return [(DRAIN_INTERVAL, webhooks.drain),
            (interval, lambda: asyncio.to_thread(run_forecasts, application)),
            (float(application.config.alerts.anomaly_interval), lambda: asyncio.to_thread(run_anomalies, application))]
