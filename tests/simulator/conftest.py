"""Fixtures: real simulator servers on 127.0.0.1 and official SDK clients pointed at them."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest

from costplane.serving import BackgroundServer
from costplane.simulator import SimulatorConfig, create_app


@pytest.fixture(scope="session")
def sim() -> Iterator[BackgroundServer]:
    """A default simulator shared by the session (tests use unique prompts where the cache matters)."""
    with BackgroundServer(create_app(SimulatorConfig(timeout_hang_s=5.0))) as server:
        yield server


@pytest.fixture()
def oai(sim: BackgroundServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=sim.url + "/v1", api_key="sk-sim", max_retries=0, timeout=10.0) as client:
        yield client


@pytest.fixture()
def claude(sim: BackgroundServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=sim.url, api_key="sk-ant-sim", max_retries=0, timeout=10.0) as client:
        yield client
