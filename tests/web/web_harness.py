"""Harness of tests/web: the real server (create_server, dashboard included) on 127.0.0.1 with two teams'
spend, runs with cost trees, outcomes, an SLO, a live environment, and one user of every role."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from costplane.api.credentials import new_user
from costplane.app import Application
from costplane.attribution.context import Context
from costplane.config import parse_config
from costplane.ledger.runtypes import OutcomeRecord, RunNode
from costplane.ledger.types import CostEvent, DecisionRecord
from costplane.lifecycle.service import build_core
from costplane.pricing.types import TokenUsage
from costplane.server import create_server
from costplane.serving import BackgroundServer

__all__ = ["PASSWORDS", "Dashboard", "dashboard", "serve_dashboard"]

BUNDLE = """
kind: Budget
name: per-team
scope: "true"
per: [team]
amount: 50 USD
window: {calendar: month, timezone: UTC}
---
kind: Budget
name: alpha-daily
scope: ctx.team == "alpha"
amount: 5 USD
window: {calendar: day, timezone: UTC}
---
kind: Budget
name: beta-daily
scope: ctx.team == "beta"
amount: 7 USD
window: {calendar: day, timezone: UTC}
---
kind: Blueprint
name: notebook
resources: [{kind: instance, sku: aws/m6i.large}]
driver: {type: noop}
lifecycle: {ttl: 2h, max_ttl: 8h, extend_by: 1h}
---
kind: Blueprint
name: gpu-box
inputs:
  size: {type: string, allowed: [large, xlarge], default: large}
  nodes: {type: int, default: 1, min: 1, max: 4}
  spot: {type: bool, default: false}
resources: [{kind: instance, sku: "aws/m6i.{size}", count: "{nodes}"}]
driver: {type: noop}
lifecycle: {ttl: 90m, max_ttl: 8h, extend_by: 1h}
require: [owner, cost_center]
---
kind: SLO
name: alpha-cost-per-ticket
outcome: ticket_resolved
objective: 0.50 USD
window: {rolling: 1d}
scope: {team: alpha}
"""

PASSWORDS = {"root": "root-password", "fin": "finance-password", "dev-a": "developer-a-pw", "dev-b": "developer-b-pw",
             "view-a": "viewer-a-password"}
ROLES = {"root": ("admin", ()), "fin": ("finance", ()), "dev-a": ("developer", ("alpha",)),
         "dev-b": ("developer", ("beta",)), "view-a": ("viewer", ("alpha",))}
# (team, agent, run, step, cost in nano-USD); several calls per run
CALLS = [
    ("alpha", "alpha-support", "run-alpha-1", "plan", 120_000_000),
    ("alpha", "alpha-support", "run-alpha-1", "answer", 310_000_000),
    ("alpha", "alpha-support", "run-alpha-2", "plan", 90_000_000),
    ("alpha", "alpha-triage", "run-alpha-3", "classify", 40_000_000),
    ("beta", "beta-research", "run-beta-1", "search", 700_000_000),
    ("beta", "beta-research", "run-beta-1", "summarise", 450_000_000),
]


@dataclass
class Dashboard:
    url: str
    app: Application
    env_id: str  # an active environment of team alpha


def _seed(app: Application) -> str:
    now = datetime.now(UTC)
    roots: dict[str, RunNode] = {}
    for i, (team, agent, run, step, cost) in enumerate(CALLS):
        ts = now - timedelta(minutes=30 - i)
        ctx = Context(team=team, agent=agent, run=run, step=step, tier="production")
        event = CostEvent(id=f"ev-{i}", ts=ts, context=ctx, provider="openai", model="gpt-4o-mini", cost_nano=cost,
                          usage=TokenUsage(input_tokens=1000 + i, output_tokens=200 + i))
        root = roots.setdefault(run, RunNode(id=run, run=run, kind="run", name=f"{agent} {run}", started_at=ts,
                                             context=Context(team=team, agent=agent, run=run)))
        node = RunNode(id=f"{run}-{step}", run=run, kind="step", name=step, started_at=ts, parent_id=root.id,
                       ended_at=ts + timedelta(seconds=2), status="ok", context=ctx)
        app.store.record_nodes([root, node], [event])
        app.store.record_decision(DecisionRecord(
            id=f"dec-{i}", ts=ts, hook="llm.request", effect="allow", bundle_revision=app.bundle.revision,
            context=ctx, input={}, result={}, policies=(), key_id=f"key-{team}"))
    app.store.record_decision(DecisionRecord(
        id="dec-deny", ts=now - timedelta(minutes=1), hook="llm.request", effect="deny",
        bundle_revision=app.bundle.revision, context=Context(team="beta", agent="beta-research"), input={},
        result={}, policies=("no-big-models",), key_id="key-beta", reason="beta may not use gpt-4o"))
    for i in range(2):
        app.store.record_outcome(OutcomeRecord(id=f"out-{i}", ts=now - timedelta(minutes=5), outcome="ticket_resolved",
                                               value=Decimal(1), context=Context(team="alpha", agent="alpha-support",
                                                                                 run=f"run-alpha-{i + 1}")))
    env = build_core(app).launch(Context(team="alpha", owner="dev-a", user="dev-a"), "notebook", {})
    env_id = getattr(env, "id", None)
    if env_id is None:
        raise AssertionError(f"seed launch denied: {env}")
    return str(env_id)


@contextmanager
def serve_dashboard(tmp_path: Path, **settings: Any) -> Iterator[Dashboard]:
    """The seeded server with extra costplane.yaml sections (e.g. server={...}, metrics={...})."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "all.yaml").write_text(BUNDLE)
    app = Application(parse_config({"store": f"sqlite:///{tmp_path}/web.db", "bundle": str(bundle), **settings},
                                   base=tmp_path))
    env_id = _seed(app)
    for name, (role, teams) in ROLES.items():
        new_user(app.store, name, role, teams, password=PASSWORDS[name])
    server = BackgroundServer(create_server(app)).start()
    try:
        yield Dashboard(server.url, app, env_id)
    finally:
        server.stop()
        app.store.close()


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[Dashboard]:
    with serve_dashboard(tmp_path) as started:
        yield started
