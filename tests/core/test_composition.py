"""The composition root: one notifier (webhooks included) reaches every part; environment notices
(notify policies, expiry, idle) arrive at a webhook exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from costplane.app import Application
from costplane.attribution.context import Context
from costplane.config import parse_config
from costplane.ledger.envtypes import EnvironmentRecord
from costplane.lifecycle.scheduler import Scheduler
from costplane.server import create_server
from visibility_harness import WebhookSink, wait_for

BUNDLE = """
kind: Blueprint
name: box
resources: [{kind: instance, sku: aws/m6i.large}]
driver: {type: noop}
lifecycle: {ttl: 30s, max_ttl: 1h, notice: 1h, accrue_every: 60s,
            idle: {metric: gpu_util, below: 5, for: 1s, action: notify}}
---
kind: Policy
name: tell-finance-about-boxes
on: environment.launch
when: ctx.team == "ml"
effect: notify
reason: the ML team launched a box
"""


@pytest.fixture()
def sink() -> Iterator[WebhookSink]:
    hook = WebhookSink()
    try:
        yield hook
    finally:
        hook.close()


def _application(tmp_path: Path, sink: WebhookSink) -> Application:
    root = tmp_path / "bundle"
    root.mkdir()
    (root / "all.yaml").write_text(BUNDLE)
    return Application(parse_config({"store": f"sqlite:///{tmp_path / 'db.sqlite'}", "bundle": str(root),
                                     "alerts": {"webhooks": [{"url": sink.url}]}}))


def test_one_notifier_is_handed_to_every_part(tmp_path: Path, sink: WebhookSink) -> None:
    application = _application(tmp_path, sink)
    try:
        create_server(application)  # assembling the server patches nothing
        assert application.webhooks is not None
        assert application.core.notifier is application.notifier
        assert application.environments.notifier is application.notifier
        assert application.core.slo_gate is application.slo_gate
    finally:
        application.close()


def test_environment_notices_reach_the_webhook_exactly_once(tmp_path: Path, sink: WebhookSink) -> None:
    application = _application(tmp_path, sink)
    try:
        create_server(application)
        webhooks = application.webhooks
        assert webhooks is not None
        env = application.environments.launch(Context(team="ml", owner="dev"), "box", {})
        assert isinstance(env, EnvironmentRecord), env
        long_ago = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        application.store.update_environment(env.id, {"metrics": {"gpu_util": {"value": 1, "at": long_ago,
                                                                               "source": "push"}}})
        scheduler = Scheduler(application.environments)
        try:
            for _ in range(3):  # idle on every pass, notice due on the first: each reaches the webhook once
                application.store.update_environment(env.id, {"next_action_at": datetime.now(UTC)})
                scheduler.tick()
                asyncio.run(webhooks.drain())
        finally:
            scheduler.close()
        want = Counter({"policy": 1, "environment_expiring": 1, "environment_idle": 1})
        assert wait_for(lambda: Counter(sink.kinds()) == want, timeout=10), sink.kinds()
        asyncio.run(webhooks.drain())
        assert Counter(sink.kinds()) == want
        subjects = {b["costplane"]["kind"]: b["costplane"]["subject"] for b in sink.received}
        assert subjects == {"policy": "tell-finance-about-boxes", "environment_expiring": env.id,
                            "environment_idle": env.id}
    finally:
        application.close()
