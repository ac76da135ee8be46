"""Harness of tests/api: the real server (create_server) on 127.0.0.1 with two teams' spend, decisions and budgets,
and one user of every role with an API token."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path

import httpx
import pytest

__all__ = ["Api", "make_api", "new_client", "seed", "seed_more"]

from decimal import Decimal

from costplane.api.credentials import issue_token, new_user
from costplane.app import Application
from costplane.attribution.context import Context
from costplane.config import parse_config
from costplane.core.claims import budget_claims
from costplane.ledger.envtypes import EnvironmentRecord
from costplane.ledger.runtypes import OutcomeRecord, RunNode
from costplane.ledger.types import CostEvent, DecisionRecord
from costplane.lifecycle.service import build_core
from costplane.pricing.types import TokenUsage
from costplane.server import create_server
from costplane.serving import BackgroundServer

BUDGETS = {
    "per-team.yaml": "kind: Budget\nname: per-team\nscope: \"true\"\nper: [team]\namount: 10 USD\n"
                     "window: {calendar: month, timezone: UTC}\n",
    "alpha.yaml": "kind: Budget\nname: alpha-only\nscope: ctx.team == \"alpha\"\namount: 2 USD\n"
                  "window: {rolling: 1h}\n",
    "beta.yaml": "kind: Budget\nname: beta-only\nscope: ctx.team == \"beta\"\namount: 3 USD\n"
                 "window: {calendar: day, timezone: UTC}\n",
    "org.yaml": "kind: Budget\nname: org\nscope: \"true\"\namount: 100 USD\nwindow: {calendar: month, timezone: UTC}\n",
    # environments (noop driver; accrual hourly so no cost event appears while a test runs) and SLOs
    "environments.yaml": """
kind: Blueprint
name: noop-box
inputs: {size: {type: string, allowed: [large, xlarge], default: large}}
resources: [{kind: instance, sku: "aws/m6i.{size}"}]
driver: {type: noop}
lifecycle: {ttl: 1h, max_ttl: 3h, extend_by: 1h, accrue_every: 60s}
require: [owner]
---
kind: Blueprint
name: big-box
resources: [{kind: instance, sku: aws/m6i.large}]
driver: {type: noop}
lifecycle: {ttl: 1h, max_ttl: 2h, extend_by: 1h, accrue_every: 60s}
---
kind: Policy
name: big-box-needs-approval
on: environment.launch
when: request.blueprint == "big-box"
effect: require_approval
reason: big boxes need an admin's approval
---
kind: Policy
name: no-forbidden-tier
on: environment.launch
when: ctx.tier == "forbidden"
effect: deny
reason: the forbidden tier may not launch environments
""",
    "slos.yaml": """
kind: SLO
name: alpha-ticket-cost
outcome: ticket_resolved
objective: 1 USD
window: {rolling: 1d}
scope: {team: alpha}
---
kind: SLO
name: beta-ticket-cost
outcome: ticket_resolved
objective: 0.05 USD
window: {rolling: 1d}
scope: {team: beta}
---
kind: SLO
name: org-ticket-cost
outcome: ticket_resolved
objective: 1 USD
window: {rolling: 1d}
""",
}


def new_client() -> httpx.Client:
    """One client for many requests (building one costs ~25 ms; hundreds per test add up) that keeps
    no cookies, so every request carries exactly the credential it names, like a fresh `httpx.get`."""
    return httpx.Client(cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])), timeout=10)


@dataclass
class Api:
    url: str
    app: Application
    tokens: dict[str, str]  # role-ish name -> bearer secret
    ids: dict[str, str]  # seeded environment name -> id (make_api(..., more=True))
    http: httpx.Client  # closed with the server

    def get(self, who: str, path: str, **params: str) -> httpx.Response:
        return self.http.get(f"{self.url}{path}", params=params,
                             headers={"authorization": f"Bearer {self.tokens[who]}"})

    def call(self, who: str, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.tokens[who]}"}
        return self.http.request(method, f"{self.url}{path}", headers=headers, **kwargs)  # type: ignore[arg-type]


def seed(app: Application) -> None:
    now = datetime.now(UTC)
    specs = list(app.bundle.budgets.values())
    for i, (team, cost) in enumerate([("alpha", 1_250_000_000), ("beta", 2_000_000_001), ("alpha", 250_000_000)]):
        ctx = Context(team=team, agent=f"{team}-bot")
        applicable = app.bundle.engine.budgets_for("llm.request", ctx, {})
        claims = budget_claims([s for s in specs if s in applicable], ctx, "gpt-4o-mini", 0, now)
        event = CostEvent(id=f"ev-{i}", ts=now - timedelta(minutes=i), context=ctx, provider="openai",
                          model="gpt-4o-mini", cost_nano=cost)
        assert app.store.record_event(event, claims)
        app.store.record_decision(DecisionRecord(
            id=f"dec-{i}", ts=now - timedelta(minutes=i), hook="llm.request", effect="deny" if i == 1 else "allow",
            bundle_revision=app.bundle.revision, context=ctx, input={}, result={},
            policies=(f"{team}-policy",), key_id=f"key-{team}"))


def seed_more(app: Application) -> dict[str, str]:
    """Runs, outcomes and environments of teams alpha, beta and (project px) gamma; returns name -> id."""
    now = datetime.now(UTC)
    ids: dict[str, str] = {}
    for team, project, cost, run in [("alpha", None, 100_000_000, "run-a"), ("beta", None, 200_000_000, "run-b"),
                                     ("gamma", "px", 300_000_000, "run-x")]:
        ctx = Context(team=team, project=project, agent=f"{team}-bot", pipeline=f"{team}-pipe", run=run)
        root = RunNode(id=run, run=run, kind="agent", name=f"{team} agent", started_at=now - timedelta(minutes=5),
                       ended_at=now, status="ok", context=ctx)
        step = RunNode(id=f"{run}-step", run=run, kind="step", name="plan", parent_id=run,
                       started_at=now - timedelta(minutes=4), ended_at=now, status="ok", context=ctx)
        event = CostEvent(id=f"ev-{run}", ts=now - timedelta(minutes=3), context=Context(
            **{**ctx.dimensions()}, tags={"node": f"{run}-step"}), provider="openai", model="gpt-4o-mini",
            cost_nano=cost, usage=TokenUsage(input_tokens=100, output_tokens=10))
        app.store.record_nodes([root, step], [event])
        app.store.record_outcome(OutcomeRecord(f"out-{run}", now - timedelta(minutes=2), "ticket_resolved",
                                               Decimal(1), ctx))
    # a run only known from cost events (calls that carried x-costplane-run), of team beta
    app.store.record_nodes([], [CostEvent(id="ev-run-c", ts=now - timedelta(minutes=1),
                                          context=Context(team="beta", run="run-c"), provider="openai",
                                          model="gpt-4o-mini", cost_nano=50_000_000)])
    core = build_core(app)
    for name, ctx in [("env-alpha", Context(team="alpha", owner="ana")), ("env-beta", Context(team="beta", owner="bo")),
                      ("env-px", Context(team="gamma", project="px", owner="pia"))]:
        env = core.launch(ctx, "noop-box", {})
        assert isinstance(env, EnvironmentRecord), env
        ids[name] = env.id
    return ids


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator[Callable[..., Api]]:
    started: list[tuple[BackgroundServer, Application, httpx.Client]] = []

    def make(store_url: str | None = None, more: bool = False) -> Api:
        bundle = tmp_path / f"bundle{len(started)}"
        bundle.mkdir()
        for name, text in BUDGETS.items():
            (bundle / name).write_text(text)
        app = Application(parse_config({"store": store_url or f"sqlite:///{tmp_path}/api{len(started)}.db",
                                        "bundle": str(bundle)}, base=tmp_path))
        seed(app)
        ids = seed_more(app) if more else {}
        tokens: dict[str, str] = {}
        for name, role, teams, projects in [
                ("root", "admin", (), ()), ("fin", "finance", (), ()), ("dev-a", "developer", ("alpha",), ()),
                ("view-a", "viewer", ("alpha",), ()), ("dev-b", "developer", ("beta",), ()),
                ("dev-px", "developer", (), ("px",)), ("dev-ab", "developer", ("alpha", "beta"), ())]:
            user = new_user(app.store, name, role, teams, password="correct horse", projects=projects)
            tokens[name] = issue_token(app.store, user)[0]
        server = BackgroundServer(create_server(app))
        server.__enter__()
        http = new_client()
        started.append((server, app, http))
        return Api(server.url, app, tokens, ids, http)

    yield make
    for server, app, http in started:
        http.close()
        server.__exit__(None, None, None)
        app.close()
