"""Every billed unit through the instrumented SDK (direct mode), checked against the price data
independently: expected costs come from genai-prices' data objects with Decimal arithmetic
(tests/billed_units_data.py). The simulator reports each usage shape when the request carries
an `x-simulator-usage` header (the SDK talks to it directly)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import openai
import orjson
import pytest

import costplane
from billed_units_data import data_price, expected_nano, model_without
from costplane.ledger.types import CostEvent
from costplane.pricing.types import UnknownUnitPrice
from run_harness import Server

LONG = [{"role": "user", "content": " ".join(f"ledger line {i} reconciles the quarterly invoice" for i in range(30))}]
SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search"}


def shape(profile: dict[str, Any]) -> dict[str, str]:
    return {"x-simulator-usage": orjson.dumps(profile).decode()}


def clients(server: Server) -> tuple[Any, Any, Any]:
    session = server.session()
    oai = costplane.instrument(openai.OpenAI(base_url=f"{server.simulator_url}/v1", api_key="sk-sim", max_retries=0),
                               mode="direct", session=session)
    ant = costplane.instrument(anthropic.Anthropic(base_url=server.simulator_url, api_key="sk-sim", max_retries=0),
                               mode="direct", session=session)
    return session, oai, ant


def recorded(server: Server, session: Any, run: str) -> CostEvent:
    session.close()
    [event] = server.app.store.run_events(run)
    return event


def anthropic_counts(usage: Any) -> dict[str, int]:
    hour = usage.cache_creation.ephemeral_1h_input_tokens if usage.cache_creation is not None else 0
    write, read = usage.cache_creation_input_tokens or 0, usage.cache_read_input_tokens or 0
    searches = usage.server_tool_use.web_search_requests if usage.server_tool_use is not None else 0
    return {"input_total": usage.input_tokens + read + write, "output_total": usage.output_tokens,
            "cache_read": read, "cache_write_5m": write - hour, "cache_write_1h": hour, "web_searches": searches}


def test_anthropic_one_hour_write_and_web_search(make_server: Callable[..., Server]) -> None:
    server = make_server()
    session, _, ant = clients(server)
    profile = {"usage": {"cache_creation_input_tokens": 300,
                         "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200}}}
    with session.agent_run("bot", run="r-1h"):
        message = ant.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=LONG, tools=[SEARCH_TOOL],
                                      extra_headers=shape(profile))
    counts = anthropic_counts(message.usage)
    assert counts["cache_write_1h"] == 200 and counts["web_searches"] == 1
    event = recorded(server, session, "r-1h")
    assert event.cost_nano == expected_nano(data_price("anthropic", "claude-sonnet-4-6"), **counts)
    assert event.usage.count("cache_write_1h") == 200 and event.status == "ok"


def test_anthropic_stream_web_search_from_the_delta(make_server: Callable[..., Server]) -> None:
    server = make_server()
    session, _, ant = clients(server)
    with session.agent_run("bot", run="r-stream"):
        events = list(ant.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=LONG,
                                          tools=[SEARCH_TOOL], stream=True))
    delta = next(e for e in events if e.type == "message_delta")
    assert delta.usage.server_tool_use is not None and delta.usage.server_tool_use.web_search_requests == 1
    event = recorded(server, session, "r-stream")
    assert event.usage.count("web_searches") == 1
    start = next(e for e in events if e.type == "message_start").message.usage
    counts = anthropic_counts(start)
    counts.update(output_total=delta.usage.output_tokens, web_searches=1)
    assert event.cost_nano == expected_nano(data_price("anthropic", "claude-sonnet-4-6"), **counts)


def test_openai_cache_write_and_audio(make_server: Callable[..., Server]) -> None:
    server = make_server()
    session, oai, _ = clients(server)
    with session.agent_run("bot", run="r-write"):
        written = oai.chat.completions.create(
            model="gpt-5.6-sol", messages=LONG, max_tokens=64,
            extra_headers=shape({"usage": {"prompt_tokens_details": {"cache_write_tokens": 40}}}))
    usage = written.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    reasoning = usage.completion_tokens_details.reasoning_tokens if usage.completion_tokens_details else 0
    event = recorded(server, session, "r-write")
    assert event.cost_nano == expected_nano(
        data_price("openai", "gpt-5.6-sol"), input_total=usage.prompt_tokens, output_total=usage.completion_tokens,
        cache_read=usage.prompt_tokens_details.cached_tokens or 0, cache_write_5m=40, reasoning=reasoning or 0)

    session, oai, _ = clients(server)
    with session.agent_run("bot", run="r-audio"):
        spoken = oai.chat.completions.create(
            model="gpt-audio", messages=LONG, max_tokens=64,
            extra_headers=shape({"usage": {"prompt_tokens_details": {"audio_tokens": 12},
                                           "completion_tokens_details": {"audio_tokens": 9}}}))
    usage = spoken.usage
    assert usage is not None
    event = recorded(server, session, "r-audio")
    assert event.cost_nano == expected_nano(data_price("openai", "gpt-audio"), input_total=usage.prompt_tokens,
                                            output_total=usage.completion_tokens, input_audio=12, output_audio=9)


@pytest.mark.parametrize("stream", [False, True])
def test_priority_tier(make_server: Callable[..., Server], stream: bool) -> None:
    server = make_server()
    session, oai, _ = clients(server)
    with session.agent_run("bot", run="r-prio"):
        if stream:
            chunks = list(oai.chat.completions.create(model="gpt-5", messages=LONG, max_tokens=64,
                                                      service_tier="priority", stream=True))
            assert chunks and chunks[-1].service_tier == "priority"
        else:
            completion = oai.chat.completions.create(model="gpt-5", messages=LONG, max_tokens=64,
                                                     service_tier="priority")
            assert completion.service_tier == "priority"
    event = recorded(server, session, "r-prio")
    counts = {"input_total": event.usage.input_tokens, "output_total": event.usage.output_tokens,
              "reasoning": event.usage.reasoning_tokens}
    priority = expected_nano(data_price("openai", "gpt-5", service_tier="priority"), **counts)
    assert event.cost_nano == priority > expected_nano(data_price("openai", "gpt-5"), **counts)


def test_batch_processing(make_server: Callable[..., Server]) -> None:
    server = make_server()
    session, _, ant = clients(server)
    with session.agent_run("bot", run="r-batch"):
        message = ant.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=LONG,
                                      extra_headers=shape({"usage": {"service_tier": "batch"}}))
    counts = anthropic_counts(message.usage)
    event = recorded(server, session, "r-batch")
    batch = expected_nano(data_price("anthropic", "claude-haiku-4-5", processing="batch"), **counts)
    assert event.cost_nano == batch < expected_nano(data_price("anthropic", "claude-haiku-4-5"), **counts)


def test_unpriced_tool_fails_before_the_call(make_server: Callable[..., Server]) -> None:
    model = model_without("anthropic", "web_searches_kcount", prefix="claude-")
    if model is None:
        pytest.skip("every Claude model in this price data has a web-search price")
    server = make_server()
    session, _, ant = clients(server)
    with pytest.raises(UnknownUnitPrice, match="web_searches"):
        ant.messages.create(model=model, max_tokens=64, messages=LONG, tools=[SEARCH_TOOL])
    session.close()
