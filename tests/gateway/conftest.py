"""Gateway test harness: a real simulator, a real gateway over HTTP, real SDK clients."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from costplane.app import Application
from costplane.config import parse_config
from costplane.gateway.app import create_gateway
from costplane.gateway.keys import create_key
from costplane.serving import BackgroundServer
from costplane.simulator.app import create_app
from costplane.simulator.config import SimulatorConfig

DEFAULT_BUNDLE = """
kind: Policy
name: experiments-use-small-models
on: llm.request
when: ctx.tier == "experiment" && request.model == "gpt-4o"
effect: route
set: {model: gpt-4o-mini}
reason: experiment tier uses the small model
---
kind: Policy
name: no-reasoning-models-in-experiments
on: llm.request
when: ctx.tier == "experiment" && request.model.startsWith("o3")
effect: deny
reason: reasoning models are not allowed in the experiment tier
"""


@dataclass
class Harness:
    url: str
    app: Application
    simulator_url: str
    servers: list[BackgroundServer] = field(default_factory=list)

    def key(self, **attributes: str) -> str:
        secret, _ = create_key(self.app.store, "test", attributes)
        return secret

    def openai(self, key: str, **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, timeout=20, **kwargs)

    def azure(self, key: str, **kwargs: Any) -> openai.AzureOpenAI:
        return openai.AzureOpenAI(azure_endpoint=self.url, api_key=key, api_version="2024-10-21", max_retries=0,
                                  timeout=20, **kwargs)

    def anthropic(self, key: str, **kwargs: Any) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, api_key=key, max_retries=0, timeout=20, **kwargs)


def write_bundle(root: Path, text: str) -> Path:
    bundle = root / "bundle"
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "bundle.yaml").write_text(textwrap.dedent(text))
    return bundle


def gateway_config(simulator_url: str, store_url: str, bundle: Path | None, **gateway: Any) -> dict[str, Any]:
    return {
        "store": store_url,
        "bundle": str(bundle) if bundle else None,
        "gateway": gateway,
        "providers": {
            "openai": {"type": "openai", "base_url": f"{simulator_url}/v1",
                       "models": ["gpt-*", "o*", "text-embedding-*"]},
            "anthropic": {"type": "anthropic", "base_url": f"{simulator_url}/v1", "models": ["claude-*"]},
            "azure": {"type": "azure-openai", "base_url": simulator_url, "models": [],
                      "deployments": {"prod-mini": "gpt-4o-mini", "prod-4o": "gpt-4o",
                                      "embed-small": "text-embedding-3-small"}},
            "google": {"type": "gemini", "base_url": simulator_url, "models": ["gemini-2.0-flash", "gemini-2.5-flash"]},
        },
    }


@pytest.fixture(scope="module")
def simulator() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(SimulatorConfig())) as server:
        yield server


@pytest.fixture
def make_gateway(tmp_path: Path, simulator: BackgroundServer) -> Iterator[Callable[..., Harness]]:
    started: list[Harness] = []

    def make(bundle: str = DEFAULT_BUNDLE, *, store_url: str | None = None, simulator_url: str | None = None,
             pricing: dict[str, Any] | None = None, **gateway: Any) -> Harness:
        sim_url = simulator_url or simulator.url
        bundle_dir = write_bundle(tmp_path / f"g{len(started)}", bundle) if bundle else None
        data = gateway_config(sim_url, store_url or f"sqlite:///{tmp_path}/g{len(started)}.db", bundle_dir, **gateway)
        if pricing is not None:
            data["pricing"] = pricing
        application = Application(parse_config(data, base=tmp_path))
        server = BackgroundServer(create_gateway(application))
        server.__enter__()
        harness = Harness(server.url, application, sim_url, [server])
        started.append(harness)
        return harness

    yield make
    for harness in started:
        for server in harness.servers:
            server.__exit__(None, None, None)
        harness.app.close()
