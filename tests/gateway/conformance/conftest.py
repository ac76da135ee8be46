"""The conformance suite's servers: one simulator answering normally, one cutting every stream, and
a gateway in front of each with a provider of every protocol family and the denial rules."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from costplane.app import Application
from costplane.config import parse_config
from costplane.gateway.app import create_gateway
from costplane.gateway.keys import create_key
from costplane.ledger.types import CostEvent
from costplane.serving import BackgroundServer
from costplane.simulator import bedrock_api
from costplane.simulator.app import create_app
from costplane.simulator.config import SimulatorConfig

from .cases import ConformanceCase, Wire

BEDROCK_KEY_ENV = "COSTPLANE_CONFORMANCE_BEDROCK_KEY"

#: one provider per protocol family, all answered by the simulator at {sim}
PROVIDERS: dict[str, dict[str, Any]] = {
    "openai": {"type": "openai", "base_url": "{sim}/v1", "models": ["gpt-*", "o*", "text-embedding-*"]},
    "anthropic": {"type": "anthropic", "base_url": "{sim}/v1", "models": ["claude-*"]},
    "azure": {"type": "azure-openai", "base_url": "{sim}", "models": [],
              "deployments": {"prod-mini": "gpt-4o-mini", "o4-mini-eu": "o4-mini"}},
    "gemini": {"type": "gemini", "base_url": "{sim}", "models": ["gemini-*"]},
    "aws": {"type": "bedrock", "base_url": "{sim}", "region": "us-east-1", "api_key_env": BEDROCK_KEY_ENV,
            "models": ["amazon.*", "*anthropic.*"]},
}

#: each denial the suite provokes: key attributes -> (status, refusal code)
BUNDLE = """
kind: Policy
name: deny-the-denied
on: llm.request
when: ctx.team == "denied"
effect: deny
reason: this team may not call models
---
kind: Budget
name: broke
scope: ctx.team == "broke"
amount: 0.000000001 USD
window: {rolling: 1h}
enforcement: hard
---
kind: Budget
name: one-call-per-run
scope: ctx.team == "limited"
per: [run]
max_calls: 1
"""


@dataclass
class Gateway:
    url: str
    app: Application

    def key(self, **attributes: str) -> str:
        secret, _ = create_key(self.app.store, "conformance", attributes)
        return secret

    def send(self, case: ConformanceCase, wire: Wire, key: str, **headers: str) -> httpx.Response:
        all_headers = {**case.auth(key), **wire.headers, **headers}
        return httpx.request(wire.method, self.url + wire.path, json=wire.body, headers=all_headers, timeout=20)

    def events(self, team: str) -> list[CostEvent]:
        return [e for e in self.app.store.list_events() if e.context.team == team]


def _gateway(tmp: Path, simulator_url: str) -> Iterator[Gateway]:
    bundle = tmp / "bundle"
    bundle.mkdir(parents=True)
    (bundle / "bundle.yaml").write_text(textwrap.dedent(BUNDLE))
    providers = {name: {k: (v.format(sim=simulator_url) if isinstance(v, str) else v) for k, v in spec.items()}
                 for name, spec in PROVIDERS.items()}
    application = Application(parse_config({"store": f"sqlite:///{tmp}/gateway.db", "bundle": str(bundle),
                                            "providers": providers}, base=tmp))
    with BackgroundServer(create_gateway(application)) as server:
        yield Gateway(server.url, application)
    application.close()


@pytest.fixture(scope="package", autouse=True)
def bedrock_key() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(BEDROCK_KEY_ENV, bedrock_api.SIMULATOR_API_KEY)
        yield


@pytest.fixture(scope="package")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with BackgroundServer(create_app(SimulatorConfig())) as simulator:
        yield from _gateway(tmp_path_factory.mktemp("conformance"), simulator.url)


@pytest.fixture(scope="package")
def cutting_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with BackgroundServer(create_app(SimulatorConfig(fault_rate=1.0, faults=("cut",)))) as simulator:
        yield from _gateway(tmp_path_factory.mktemp("conformance-cut"), simulator.url)
