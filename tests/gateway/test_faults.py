"""Upstream 5xx, timeouts and cut streams: the reservation is released, or settled for what was
used; no reservation is ever left open."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest

from costplane.serving import BackgroundServer
from costplane.simulator.app import create_app
from costplane.simulator.config import SimulatorConfig

ASK = [{"role": "user", "content": "Tell me a long story about budgets and the people who keep them."}]


@pytest.fixture(scope="module")
def faulty() -> Iterator[dict[str, str]]:
    servers = {kind: BackgroundServer(create_app(SimulatorConfig(fault_rate=1.0, faults=(kind,), timeout_hang_s=5)))
               for kind in ("500", "timeout", "cut")}
    for server in servers.values():
        server.__enter__()
    yield {kind: server.url for kind, server in servers.items()}
    for server in servers.values():
        server.__exit__(None, None, None)


def test_upstream_500_is_passed_through_and_nothing_is_charged(make_gateway, faulty) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(simulator_url=faulty["500"])
    with pytest.raises(openai.InternalServerError):
        gw.openai(gw.key(team="ml")).chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert gw.app.store.count_events() == 0
    assert gw.app.store.open_reservations() == 0


def test_upstream_timeout_is_a_504_and_releases(make_gateway, faulty) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(simulator_url=faulty["timeout"], upstream_timeout="1s")
    with pytest.raises(openai.APIStatusError) as info:
        gw.openai(gw.key(team="ml")).chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert info.value.status_code == 504
    assert gw.app.store.count_events() == 0
    assert gw.app.store.open_reservations() == 0


def test_cut_openai_stream_settles_for_tokens_seen(make_gateway, faulty) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(simulator_url=faulty["cut"])
    client = gw.openai(gw.key(team="ml"))
    received = 0
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True,
                                                    max_tokens=120):
            if chunk.choices and chunk.choices[0].delta.content:
                received += 1
    [event] = gw.app.store.list_events()
    assert event.status == "cut"
    assert received > 0 and event.usage.output_tokens == received
    assert event.cost_nano > 0
    assert gw.app.store.open_reservations() == 0


def test_cut_anthropic_stream_settles_for_tokens_seen(make_gateway, faulty) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(simulator_url=faulty["cut"])
    client = gw.anthropic(gw.key(team="support"))
    with pytest.raises(anthropic.APIError), client.messages.stream(
        model="claude-haiku-4-5", max_tokens=150, messages=ASK
    ) as stream:
        for _ in stream.text_stream:
            pass
    [event] = gw.app.store.list_events()
    assert event.status == "cut"
    assert event.usage.input_tokens > 0 and event.usage.output_tokens > 0
    assert gw.app.store.open_reservations() == 0
