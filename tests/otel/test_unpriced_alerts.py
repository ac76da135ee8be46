"""Spans without usage, mapped without HTTP: the unpriced events, their warnings, and the
`otlp_unpriced` alert delivered through the webhook machinery once per service/model and UTC day."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from costplane.app import Application
from costplane.config import AlertsConfig, WebhookConfig, parse_config
from costplane.otel.decode import SpanData
from costplane.otel.genai import ingest_spans, unpriced_alerts

START = int(datetime(2026, 11, 30, 9, 0, tzinfo=UTC).timestamp() * 1e9)


def _span(span_id: str, attrs: dict[str, Any], service: str = "chat-svc") -> SpanData:
    return SpanData("5b8efff798038103d269b633813fc70e", span_id, "", "chat", START, START + 2_000_000_000, False,
                    attrs, {"service.name": service})


def test_no_usage_spans_become_unpriced_events_and_one_alert_a_day(tmp_path: Path) -> None:
    app = Application(parse_config({"store": f"sqlite:///{tmp_path}/a.db"}, base=tmp_path))
    base = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o"}
    result = ingest_spans([
        _span("00000000000000a1", base),
        _span("00000000000000a2", {**base, "gen_ai.usage.input_tokens": 0, "gen_ai.usage.output_tokens": 0}),
        _span("00000000000000a3", {**base, "gen_ai.input.messages": orjson.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": "hello"}]}]).decode()}),
        _span("00000000000000a4", {"gen_ai.operation.name": "invoke_agent", "gen_ai.request.model": "gpt-4o"}),
        _span("00000000000000a5", base, service="batch-job"),
    ], app.catalog.resolve)
    by_span = {e.id[-16:]: e for e in result.events}
    assert {k: (e.status, e.cost_nano) for k, e in by_span.items() if e.status == "unpriced"} == {
        "00000000000000a1": ("unpriced", 0), "00000000000000a2": ("unpriced", 0), "00000000000000a5": ("unpriced", 0)}
    estimated = by_span["00000000000000a3"]
    assert estimated.status == "estimated" and estimated.cost_nano > 0 and estimated.usage.output_tokens == 0
    assert result.estimated == 1 and not result.rejected
    assert [n.kind for n in result.nodes] == ["run", "agent"]  # the agent span is a node, not a call
    warnings = result.warnings()
    assert len(warnings) == 3 and all("no token usage and no captured content" in w for w in warnings)

    alerts = unpriced_alerts(result)
    assert sorted((a.subject, a.data["spans"]) for a in alerts) == [("batch-job/gpt-4o", 1), ("chat-svc/gpt-4o", 2)]
    assert all(a.data["day"] == "2026-11-30" for a in alerts)

    sent: list[Mapping[str, Any]] = []

    def send(url: str, payload: Mapping[str, Any], timeout: float) -> int:
        sent.append(payload)
        return 200

    from costplane.alerts.webhook import WebhookNotifier

    notifier = WebhookNotifier(AlertsConfig(webhooks=(WebhookConfig("http://127.0.0.1:9/hook", ("otlp_unpriced",)),)),
                               app.store, lambda: {}, send=send,
                               clock=lambda: datetime(2026, 11, 30, 10, 0, tzinfo=UTC))
    for _ in range(2):  # the same batch again (an exporter retrying): the store key makes it silent
        for alert in alerts:
            notifier.notify(alert)
        asyncio.run(notifier.drain())
    assert sorted(p["costplane"]["subject"] for p in sent) == ["batch-job/gpt-4o", "chat-svc/gpt-4o"]
    assert all(p["costplane"]["kind"] == "otlp_unpriced" and "unpriced" in p["text"] for p in sent)
    app.close()
