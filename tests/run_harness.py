"""Shared harness of the issue-4 suites (tests/sdk, otel, runs, outcomes): the real upstream
simulator and the real costplane server (gateway + runs/outcomes/OTLP API) on 127.0.0.1."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from costplane.app import Application
from costplane.config import parse_config
from costplane.gateway.keys import create_key
from costplane.sdk.session import Session
from costplane.server import create_server
from costplane.serving import BackgroundServer
from costplane.simulator.app import create_app
from costplane.simulator.config import SimulatorConfig

__all__ = ["Server", "make_server", "simulator"]


@dataclass
class Server:
    url: str
    app: Application
    simulator_url: str
    servers: list[BackgroundServer] = field(default_factory=list)

    def key(self, **attributes: str) -> str:
        secret, _ = create_key(self.app.store, "test", attributes)
        return secret

    def session(self) -> Session:
        """An SDK session writing into the server's own store."""
        return Session(self.app.store, catalog=self.app.catalog, flush_interval=0.05)


def config(simulator_url: str, store_url: str, bundle: Path | None) -> dict[str, Any]:
    return {
        "store": store_url,
        "bundle": str(bundle) if bundle else None,
        "providers": {
            "openai": {"type": "openai", "base_url": f"{simulator_url}/v1", "models": ["gpt-*", "o*"]},
            "anthropic": {"type": "anthropic", "base_url": f"{simulator_url}/v1", "models": ["claude-*"]},
        },
    }


@pytest.fixture(scope="module")
def simulator() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(SimulatorConfig())) as server:
        yield server


@pytest.fixture
def make_server(tmp_path: Path, simulator: BackgroundServer) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def make(bundle: str | None = None) -> Server:
        n = len(started)
        bundle_dir = None
        if bundle is not None:
            bundle_dir = tmp_path / f"bundle{n}"
            bundle_dir.mkdir()
            (bundle_dir / "bundle.yaml").write_text(textwrap.dedent(bundle))
        application = Application(parse_config(config(simulator.url, f"sqlite:///{tmp_path}/s{n}.db", bundle_dir),
                                                base=tmp_path))
        server = BackgroundServer(create_server(application))
        server.__enter__()
        harness = Server(server.url, application, simulator.url, [server])
        started.append(harness)
        return harness

    yield make
    for harness in started:
        for server in harness.servers:
            server.__exit__(None, None, None)
        harness.app.close()
