"""Harness of tests/api: the real server (create_server) on 127.0.0.1 with two teams' spend, decisions and budgets,
and one user of every role with an API token."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

__all__ = ["Api", "make_api", "seed"]

from costplane.api.credentials import issue_token, new_user
from costplane.app import Application
from costplane.attribution.context import Context
from costplane.config import parse_config
from costplane.core.claims import budget_claims
from costplane.ledger.types import CostEvent, DecisionRecord
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
}


@dataclass
class Api:
    url: str
    app: Application
    tokens: dict[str, str]  # role-ish name -> bearer secret

    def get(self, who: str, path: str, **params: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, headers={"authorization": f"Bearer {self.tokens[who]}"},
                         timeout=10)

    def call(self, who: str, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.tokens[who]}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]


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


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator[Callable[[str | None], Api]]:
    started: list[tuple[BackgroundServer, Application]] = []

    def make(store_url: str | None = None) -> Api:
        bundle = tmp_path / f"bundle{len(started)}"
        bundle.mkdir()
        for name, text in BUDGETS.items():
            (bundle / name).write_text(text)
        app = Application(parse_config({"store": store_url or f"sqlite:///{tmp_path}/api{len(started)}.db",
                                        "bundle": str(bundle)}, base=tmp_path))
        seed(app)
        tokens: dict[str, str] = {}
        for name, role, teams in [("root", "admin", ()), ("fin", "finance", ()), ("dev-a", "developer", ("alpha",)),
                                  ("view-a", "viewer", ("alpha",)), ("dev-b", "developer", ("beta",))]:
            user = new_user(app.store, name, role, teams, password="correct horse")
            tokens[name] = issue_token(app.store, user)[0]
        server = BackgroundServer(create_server(app))
        server.__enter__()
        started.append((server, app))
        return Api(server.url, app, tokens)

    yield make
    for server, app in started:
        server.__exit__(None, None, None)
        app.close()
