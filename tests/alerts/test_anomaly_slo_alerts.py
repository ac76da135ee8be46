"""Alert webhooks for spend anomalies (once per scope and day, however often the job runs) and for
economic SLO breaches (once per breach episode), received by a webhook test server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from costplane.alerts.service import install_webhooks, run_anomalies
from costplane.alerts.webhook import WebhookNotifier
from costplane.app import Application
from costplane.attribution.context import Context
from costplane.config import parse_config
from costplane.core.notify import Notification
from costplane.ledger.runtypes import OutcomeRecord
from costplane.ledger.types import CostEvent
from costplane.money import format_usd
from costplane.runs.service import runs_parts
from visibility_harness import WebhookSink, wait_for

USD = 1_000_000_000
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)  # the latest complete days: the 18th and the 19th


def _application(tmp_path: Path, sink: WebhookSink, kinds: list[str], bundle: str | None = None) -> Application:
    data: dict[str, object] = {"store": f"sqlite:///{tmp_path}/a.db",
                               "alerts": {"webhooks": [{"url": sink.url, "kinds": kinds}]}}
    if bundle is not None:
        (tmp_path / "bundle").mkdir()
        (tmp_path / "bundle" / "b.yaml").write_text(textwrap.dedent(bundle))
        data["bundle"] = str(tmp_path / "bundle")
    return Application(parse_config(data))


def _drain(notifier: WebhookNotifier) -> None:
    async def run() -> None:
        for _ in range(50):
            await notifier.drain()
            if not notifier.pending:
                return
            await asyncio.sleep(0.01)

    asyncio.run(run())


def _spend(application: Application, ts: datetime, team: str, agent: str, model: str, cost_nano: int,
           n: int) -> None:
    application.store.record_event(CostEvent(id=f"evt_{team}_{agent}_{ts:%Y%m%d}_{n}", ts=ts,
                                             context=Context(team=team, agent=agent), provider="openai",
                                             model=model, cost_nano=cost_nano))


def test_injected_anomaly_alerts_once_per_scope_and_day(tmp_path: Path, sink: WebhookSink) -> None:
    application = _application(tmp_path, sink, ["anomaly"])
    try:
        notifier = install_webhooks(application)
        assert notifier is not None
        yesterday = datetime(2026, 11, 19, tzinfo=UTC)
        for back in range(1, 31):  # a regular history: ml ~10 USD/day, support ~4 USD/day
            day = yesterday - timedelta(days=back) + timedelta(hours=13)
            _spend(application, day, "ml", "trainer", "gpt-4o", 10 * USD + (back % 3) * 100_000_000, 0)
            _spend(application, day, "support", "helper", "gpt-4o-mini", 4 * USD + (back % 2) * 50_000_000, 0)
        # yesterday: support as usual, ml's research agent burns 37.5 USD on top of its usual spend
        _spend(application, yesterday + timedelta(hours=13), "support", "helper", "gpt-4o-mini", 4 * USD, 0)
        _spend(application, yesterday + timedelta(hours=10), "ml", "trainer", "gpt-4o", 10 * USD, 0)
        for n in range(3):
            _spend(application, yesterday + timedelta(hours=14 + n), "ml", "research", "o1", 12_500_000_000, n)
        _spend(application, NOW, "ml", "research", "o1", 99 * USD, 9)  # today: not complete, not scanned yet

        for run in range(3):  # the job runs several times on the same days, also the next day
            raised = run_anomalies(application, NOW + timedelta(hours=run))
            assert raised == 2  # all spend and team ml: each notified again, delivered once
            _drain(notifier)
        assert wait_for(lambda: len(sink.received) >= 2)
        assert not wait_for(lambda: len(sink.received) > 2, timeout=0.5)
        by_subject = {b["costplane"]["subject"]: b["costplane"] for b in sink.received}
        assert sorted(by_subject) == ["all", "team=ml"]

        for _ in range(2):  # a day later the 19th is still scanned (silent now) and the 20th is complete
            assert run_anomalies(application, NOW + timedelta(days=1)) == 4
            _drain(notifier)
        assert wait_for(lambda: len(sink.received) >= 4)
        assert not wait_for(lambda: len(sink.received) > 4, timeout=0.5)
        keys = sorted(b["costplane"]["dedup_key"] for b in sink.received)
        assert keys == ["anomaly|all:*|2026-11-19", "anomaly|all:*|2026-11-20", "anomaly|team:ml|2026-11-19",
                        "anomaly|team:ml|2026-11-20"]
        team = by_subject["team=ml"]
        assert team["kind"] == "anomaly" and team["dedup_key"] == "anomaly|team:ml|2026-11-19"
        data = team["data"]
        assert data["day"] == "2026-11-19" and data["scope_kind"] == "team" and data["scope"] == "ml"
        assert data["actual_nano"] == 10 * USD + 37_500_000_000
        assert data["excess_nano"] == data["actual_nano"] - data["expected_nano"]
        assert data["excess_usd"] == format_usd(data["excess_nano"])
        top = data["root_causes"][0]
        assert (top["team"], top["agent"], top["model"]) == ("ml", "research", "o1")
        assert top["actual_nano"] == 37_500_000_000 and top["excess_usd"] == format_usd(top["excess_nano"])
        assert "team=ml agent=research model=o1" in team["message"]
        assert by_subject["all"]["dedup_key"] == "anomaly|all:*|2026-11-19"
        assert notifier.delivered == 4 and notifier.failed == 0
    finally:
        application.close()


SLO = """
kind: SLO
name: support-cost-per-ticket
outcome: ticket_resolved
objective: 0.5 USD
window: {rolling: 1d}
scope: {agent: support-bot}
"""


def test_slo_breach_alerts_once_per_episode(tmp_path: Path, sink: WebhookSink) -> None:
    application = _application(tmp_path, sink, ["slo_breach"], SLO)
    try:
        _, jobs = runs_parts(application)  # the server's order: the SLO job exists before the webhooks
        notifier = install_webhooks(application)
        assert notifier is not None
        ((_, evaluate),) = jobs
        store = application.store

        def cost(n: int, nano: int) -> None:
            store.record_event(CostEvent(id=f"evt_slo_{n}", ts=datetime.now(UTC),
                                         context=Context(agent="support-bot"), provider="openai",
                                         model="gpt-4o", cost_nano=nano))

        def outcomes(first: int, count: int) -> None:
            for i in range(first, first + count):
                store.record_outcome(OutcomeRecord(f"o{i}", datetime.now(UTC), "ticket_resolved", Decimal(1),
                                                   Context(agent="support-bot")))

        def evaluate_times(times: int) -> None:
            for _ in range(times):
                asyncio.run(evaluate())
                _drain(notifier)

        cost(1, 3 * USD)
        outcomes(0, 2)  # 1.5 USD per ticket > 0.5 USD: breached
        evaluate_times(3)
        assert wait_for(lambda: len(sink.received) == 1)
        (first,) = [b["costplane"] for b in sink.received]
        (state,) = store.slo_states()
        assert state.breached and state.since is not None
        assert first["kind"] == "slo_breach" and first["subject"] == "support-cost-per-ticket"
        assert first["dedup_key"] == f"slo_breach|support-cost-per-ticket|{state.since.isoformat()}"
        data = first["data"]
        assert data["objective_usd"] == "0.5" and data["cost_per_outcome_usd"] == "1.5"
        assert data["cost_usd"] == "3" and data["outcomes"] == "2" and data["window_seconds"] == 86_400
        assert data["breached_since"] == state.since.isoformat()

        outcomes(2, 10)  # 3 USD for 12 tickets: 0.25 USD, back within the objective
        evaluate_times(2)
        assert not store.slo_states()[0].breached
        cost(2, 5 * USD)  # 8 USD for 12 tickets: a second episode
        evaluate_times(3)
        assert wait_for(lambda: len(sink.received) == 2)
        assert not wait_for(lambda: len(sink.received) > 2, timeout=0.5)
        second = sink.received[1]["costplane"]
        assert second["dedup_key"] != first["dedup_key"]
        assert second["data"]["cost_per_outcome_usd"] == format_usd(8 * USD // 12)

        # the same episode raised again (another replica, a restart): claimed once in the store
        since = store.slo_states()[0].since
        assert since is not None and second["data"]["breached_since"] == since.isoformat()
        again = Notification("slo_breach", "support-cost-per-ticket", "breached", "",
                             {"breached_since": since.isoformat()})
        notifier.notify(again)
        _drain(notifier)
        assert not wait_for(lambda: len(sink.received) > 2, timeout=0.5)
        assert notifier.delivered == 2
    finally:
        application.close()
