"""The drift alert: who gets it, what it says, once per drift; and hourly bills cut in a named zone."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from reconcile_seed import DATA, PROVIDERS, SETTINGS, seed

from costplane.alerts.webhook import WebhookError
from costplane.config import AlertsConfig, WebhookConfig
from costplane.ledger import Store
from costplane.reconcile.alert import KIND, send_drift_alert
from costplane.reconcile.metered import ledger_provider_map
from costplane.reconcile.run import Reconciliation, reconcile
from costplane.reconcile.settings import ReconcileSettings
from costplane.reconcile.sources import ReadContext, read_bill

NOW = datetime(2026, 11, 5, 6, 0, tzinfo=UTC)


def _result(store: Store, settings: ReconcileSettings = SETTINGS, *paths: Path) -> Reconciliation:
    ctx = ReadContext.of(settings)
    sources = [read_bill(p, ctx) for p in paths or (DATA / "anthropic_cost_report.json",)]
    return reconcile(store, sources, settings, ledger_provider_map(PROVIDERS, settings))


class Recorder:
    def __init__(self, status: int = 200, down: bool = False) -> None:
        self.sent: list[tuple[str, Mapping[str, Any]]] = []
        self.status, self.down = status, down

    def __call__(self, url: str, payload: Mapping[str, Any], timeout: float) -> int:
        if self.down:
            raise WebhookError(f"{url}: connection refused")
        self.sent.append((url, payload))
        return self.status


def test_only_webhooks_subscribed_to_the_kind_get_it(store: Store) -> None:
    seed(store)
    config = AlertsConfig(webhooks=(WebhookConfig("http://127.0.0.1:9/a", (KIND,)),
                                    WebhookConfig("http://127.0.0.1:9/b", ("budget_threshold",)),
                                    WebhookConfig("http://127.0.0.1:9/c")))  # no kinds: every kind
    send = Recorder()
    outcomes = send_drift_alert(_result(store), config, store, NOW, send=send)
    assert [url for url, _ in send.sent] == ["http://127.0.0.1:9/a", "http://127.0.0.1:9/c"]
    assert outcomes == ["http://127.0.0.1:9/a: HTTP 200", "http://127.0.0.1:9/c: HTTP 200"]
    payload = send.sent[0][1]
    assert payload["costplane"]["kind"] == KIND and payload["costplane"]["dedup_key"].startswith(KIND + ":")
    assert payload["costplane"]["data"]["breaches"] == [{
        "day": "2026-11-03", "kind": "money", "provider": "anthropic", "model": "claude-sonnet-4-5",
        "project": "support", "metered": "4.000000000", "billed": "4.375", "drift": "0.375000000",
        "drift_pct": "8.57", "status": "matched"}]
    assert "1 line(s) past the drift threshold" in payload["costplane"]["message"]
    json.dumps(payload)


def test_the_same_drift_alerts_once_and_a_new_one_again(store: Store, tmp_path: Path) -> None:
    seed(store)
    config = AlertsConfig(webhooks=(WebhookConfig("http://127.0.0.1:9/a", (KIND,)),))
    send = Recorder()
    send_drift_alert(_result(store), config, store, NOW, send=send)
    assert send_drift_alert(_result(store), config, store, NOW, send=send)[0].startswith("already raised")
    report = json.loads((DATA / "anthropic_cost_report.json").read_text())
    report["data"][1]["results"][0]["amount"] = "450"  # the drift grew: a new alert
    path = tmp_path / "cost.json"
    path.write_text(json.dumps(report))
    send_drift_alert(_result(store, SETTINGS, path), config, store, NOW, send=send)
    assert [p["costplane"]["data"]["breaches"][0]["billed"] for _, p in send.sent] == ["4.375", "4.5"]


def test_no_breach_or_no_webhook_sends_nothing_and_a_down_webhook_is_reported(store: Store) -> None:
    seed(store)
    send = Recorder()
    config = AlertsConfig(webhooks=(WebhookConfig("http://127.0.0.1:9/a", (KIND,)),))
    calm = ReconcileSettings(drift_threshold_pct=Decimal(50), drift_threshold_usd=None, projects=SETTINGS.projects)
    assert send_drift_alert(_result(store, calm), config, store, NOW, send=send) == []
    assert send_drift_alert(_result(store), AlertsConfig(), store, NOW, send=send) == []
    assert send.sent == []
    outcomes = send_drift_alert(_result(store), config, None, NOW, send=Recorder(down=True))
    assert outcomes == ["http://127.0.0.1:9/a: unreachable: http://127.0.0.1:9/a: connection refused"]


def test_hourly_usage_buckets_are_cut_into_new_york_days(store: Store, tmp_path: Path) -> None:
    seed(store)  # e6: 2026-11-03 23:30 UTC is 18:30 in New York, e7: 11:00 UTC is 06:00 there
    hours = [{"starting_at": f"2026-11-03T{h:02d}:00:00Z", "ending_at": f"2026-11-03T{h + 1:02d}:00:00Z",
              "results": []} for h in range(5, 23)]  # 00:00-18:00 New York (EST, UTC-5)
    hours[6]["results"] = [{"model": "claude-haiku-4-5-20251001", "workspace_id": "wrkspc_01Support",
                            "uncached_input_tokens": 800, "cache_read_input_tokens": 0, "output_tokens": 50,
                            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}}]
    path = tmp_path / "usage.json"
    path.write_text(json.dumps({"data": hours, "has_more": False, "next_page": None}))
    new_york = ReconcileSettings(timezone="America/New_York", projects=SETTINGS.projects)
    result = _result(store, new_york, path)
    # the sonnet call at 18:30 New York lies after the hours billed, so it is not compared
    assert [(x.day, x.model, x.metered_split, x.billed_split, x.status) for x in result.tokens] == [
        (date(2026, 11, 3), "claude-haiku-4-5", (800, 50), (800, 50), "matched")]
    hours.append({"starting_at": "2026-11-03T23:00:00Z", "ending_at": "2026-11-04T00:00:00Z", "results": []})
    path.write_text(json.dumps({"data": hours, "has_more": False, "next_page": None}))
    result = _result(store, new_york, path)  # now the 18:00-19:00 hour is billed, with nothing in it
    assert [(x.model, x.status, x.metered_split) for x in result.tokens] == [
        ("claude-haiku-4-5", "matched", (800, 50)), ("claude-sonnet-4-5", "metered_only", (1000, 100))]
