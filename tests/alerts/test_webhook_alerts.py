"""Alert webhooks: exactly once per threshold crossing through the real gateway, de-duplicated
across replicas on one PostgreSQL, retried on failure, forecasts of exhaustion, `alerts test`."""

from __future__ import annotations

import asyncio
import textwrap
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from costplane.alerts.service import install_webhooks, run_forecasts
from costplane.alerts.webhook import WebhookNotifier
from costplane.app import Application
from costplane.attribution.context import Context
from costplane.cli.main import app as cli
from costplane.config import AlertsConfig, WebhookConfig, parse_config
from costplane.core.claims import budget_claims
from costplane.core.notify import Notification
from costplane.ledger.types import CostEvent
from store_fixtures import pg_schema
from visibility_harness import WebhookSink, wait_for

SOFT_BUDGET = """
kind: Budget
name: support-daily
scope: ctx.team == "support"
amount: 0.0004 USD
window: {calendar: day, timezone: UTC}
enforcement: soft
alerts: [50, 80]
"""

ASK = [{"role": "user", "content": "Summarise the customer's last three messages in one line."}]


def test_threshold_alert_exactly_once_per_crossing_through_the_gateway(make_served, sink: WebhookSink) -> None:
    served = make_served(SOFT_BUDGET, alerts={"webhooks": [{"url": sink.url}]})
    client = served.openai(served.key(team="support"))

    def spent() -> int:
        spec = served.app.bundle.budgets["support-daily"]
        claims = budget_claims([spec], Context(), "", 0, datetime.now(UTC))
        return served.app.store.claim_states(claims)[0].spent_nano

    calls = 0
    while spent() * 100 < 130 * 400_000 and calls < 60:  # past 50%, 80% and the limit itself
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=60)
        calls += 1
    assert spent() > 400_000, "the soft budget never filled: traffic too cheap for the test"
    assert wait_for(lambda: Counter(sink.kinds()) == Counter(
        {"budget_threshold": 2, "soft_budget_exceeded": 1}), timeout=10), sink.kinds()

    for _ in range(5):  # traffic continues (soft budget): no alert is sent again
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=60)
    assert not wait_for(lambda: len(sink.received) > 3, timeout=1.0)
    thresholds = sorted(b["costplane"]["data"]["percent"] for b in sink.received
                        if b["costplane"]["kind"] == "budget_threshold")
    assert thresholds == [50, 80]
    first = sink.received[0]
    assert isinstance(first["text"], str) and first["blocks"] and first["costplane"]["subject"] == "support-daily"
    assert first["costplane"]["dedup_key"].startswith(("budget_threshold|support-daily", "soft_budget"))


def _app(store_url: str, sink: WebhookSink, bundle: Path) -> Application:
    return Application(parse_config({"store": store_url, "bundle": str(bundle),
                                     "alerts": {"webhooks": [{"url": sink.url}], "forecast_min_elapsed": "1h"}}))


def test_dedup_across_two_replicas_on_one_postgres(tmp_path: Path, sink: WebhookSink) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "b.yaml").write_text(textwrap.dedent("""
        kind: Budget
        name: ml-monthly
        scope: "true"
        amount: 10 USD
        window: {calendar: month, timezone: UTC}
        alerts: [50]
    """))
    with pg_schema() as url:
        replicas = [_app(url, sink, bundle) for _ in range(2)]
        try:
            notifiers = [install_webhooks(a) for a in replicas]
            assert all(isinstance(n, WebhookNotifier) for n in notifiers)
            now = datetime(2026, 11, 11, 12, tzinfo=UTC)  # 10.5 days into a 30-day month
            spec = replicas[0].bundle.budgets["ml-monthly"]
            event = CostEvent(id="evt_1", ts=now, context=Context(team="ml"), provider="openai", model="gpt-4o",
                              cost_nano=6_000_000_000)
            replicas[0].store.record_event(event, budget_claims([spec], Context(), "", 0, now))
            crossing = Notification("budget_threshold", "ml-monthly", "passed 50%", "dec_1",
                                    {"percent": 50, "partition": ""})
            for application in replicas:  # both replicas see the crossing and forecast the exhaustion
                application.core.notifier.notify(crossing)
                assert run_forecasts(application, now) == 1
            for notifier in notifiers:
                assert notifier is not None
                asyncio.run(notifier.drain())
            assert wait_for(lambda: len(sink.received) == 2)
            assert sorted(sink.kinds()) == ["budget_threshold", "forecast_exhaustion"]
            forecast = next(b for b in sink.received if b["costplane"]["kind"] == "forecast_exhaustion")
            data = forecast["costplane"]["data"]
            assert data["spent_usd"] == "6" and data["limit_usd"] == "10"
            assert data["forecast_nano"] == 6_000_000_000 * 30 * 24 // (10 * 24 + 12)
            assert data["exhausts_at"].startswith("2026-11-18")  # 10 USD at 6 USD per 10.5 days
            for application in replicas:  # later in the same month: still nothing new
                run_forecasts(application, now + timedelta(days=1))
            for notifier in notifiers:
                assert notifier is not None
                asyncio.run(notifier.drain())
            assert not wait_for(lambda: len(sink.received) > 2, timeout=0.5)
        finally:
            for application in replicas:
                application.close()


def test_failed_delivery_is_retried_and_a_full_backlog_drops(tmp_path: Path) -> None:
    failing = WebhookSink(fail_first=2)
    try:
        application = Application(parse_config({"store": f"sqlite:///{tmp_path}/a.db"}))
        config = AlertsConfig(webhooks=(WebhookConfig(failing.url, ("policy",)),), retries=3, backlog=2)
        notifier = WebhookNotifier(config, application.store, lambda: {}, backoff=0.01)
        for name in ("p1", "p2", "p3"):  # the third does not fit the backlog of 2
            notifier.notify(Notification("policy", name, "matched", "dec"))
        assert notifier.dropped == 1

        async def deliver() -> None:
            for _ in range(50):
                await notifier.drain()
                if not notifier.pending:
                    return
                await asyncio.sleep(0.02)

        asyncio.run(deliver())
        assert failing.requests == 4 and notifier.delivered == 2 and notifier.failed == 0
        assert sorted(b["costplane"]["subject"] for b in failing.received) == ["p1", "p2"]
        application.close()
    finally:
        failing.close()


def test_alerts_test_command_reports_each_status(tmp_path: Path, sink: WebhookSink) -> None:
    down = WebhookSink()
    down.close()  # nothing listens there any more
    config = tmp_path / "costplane.yaml"
    config.write_text(f"alerts:\n  webhooks:\n    - url: {sink.url}\n    - url: {down.url}\n      timeout: 2\n")
    result = CliRunner().invoke(cli, ["alerts", "test", "--config", str(config)])
    assert result.exit_code == 1, result.output
    assert "HTTP 200" in result.output and "unreachable" in result.output
    assert sink.kinds() == ["test"]
