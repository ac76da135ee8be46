"""Every billed unit through the gateway, checked against the price data independently.

The simulator reports the usage shapes of real APIs for chosen models (usage profiles); the
expected cost of each call is computed in the test from genai-prices' data objects with Decimal
arithmetic (tests/billed_units_data.py), never through costplane's pricing code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from billed_units_data import data_price, expected_nano, model_without
from costplane.attribution.context import Context
from costplane.core.requests import Denial, LlmRequest
from costplane.ledger.types import CostEvent
from costplane.serving import BackgroundServer
from costplane.simulator.app import create_app
from costplane.simulator.config import SimulatorConfig

from .conftest import Harness

#: a Claude model the data gives no web-search price, chosen from the data at test time
UNPRICED_SEARCH = model_without("anthropic", "web_searches_kcount", prefix="claude-")
PROFILES: dict[str, dict[str, Any]] = {
    "claude-sonnet-4-6": {"usage": {"cache_creation_input_tokens": 300, "cache_creation": {
        "ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200}}},
    "claude-haiku-4-5": {"usage": {"service_tier": "batch"}},  # a response served by batch processing
    **({UNPRICED_SEARCH: {"usage": {"server_tool_use": {"web_search_requests": 2}}}} if UNPRICED_SEARCH else {}),
    "claude-opus-4-6": {"usage": {"server_tool_use": {"web_search_requests": 5}}},  # every use it may make
    "gpt-5.6-sol": {"usage": {"prompt_tokens_details": {"cache_write_tokens": 40}}},
    "gpt-5-mini": {"service_tier": "default"},  # asked for priority, served the standard tier
    "gpt-audio": {"usage": {"prompt_tokens_details": {"audio_tokens": 10},
                            "completion_tokens_details": {"audio_tokens": 8}}},
}
LONG = [{"role": "user", "content": " ".join(f"ledger line {i} reconciles the quarterly invoice" for i in range(30))}]
SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search"}


@pytest.fixture(scope="module")
def profiled() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(SimulatorConfig(usage_profiles=PROFILES))) as server:
        yield server


@pytest.fixture
def gw(make_gateway: Callable[..., Harness], profiled: BackgroundServer) -> Harness:
    return make_gateway(simulator_url=profiled.url)


def only_event(gw: Harness) -> CostEvent:
    [event] = gw.app.store.list_events()
    return event


def reserved(gw: Harness, event: CostEvent) -> int:
    [decision] = [d for d in gw.app.store.list_decisions() if d.id == event.decision_id]
    return int(decision.result["reserved_nano"])


def anthropic_counts(usage: Any) -> dict[str, int]:
    creation = usage.cache_creation
    hour = creation.ephemeral_1h_input_tokens if creation is not None else 0
    write = usage.cache_creation_input_tokens or 0
    read = usage.cache_read_input_tokens or 0
    searches = usage.server_tool_use.web_search_requests if usage.server_tool_use is not None else 0
    return {"input_total": usage.input_tokens + read + write, "output_total": usage.output_tokens,
            "cache_read": read, "cache_write_5m": write - hour, "cache_write_1h": hour, "web_searches": searches}


def test_anthropic_one_hour_cache_write_and_web_search(gw: Harness) -> None:
    client = gw.anthropic(gw.key(team="ml"))
    message = client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=LONG, tools=[SEARCH_TOOL])
    counts = anthropic_counts(message.usage)
    assert counts["cache_write_1h"] == 200 and counts["cache_write_5m"] == 100 and counts["web_searches"] == 1
    want = expected_nano(data_price("anthropic", "claude-sonnet-4-6"), **counts)
    event = only_event(gw)
    assert event.cost_nano == want and event.status == "ok" and not event.price_flagged
    assert event.usage.count("cache_write_1h") == 200 and event.usage.count("web_searches") == 1
    assert event.unit_prices["cache_write_1h"] == str(data_price("anthropic", "claude-sonnet-4-6").cache_write_1h_mtok)
    # the 1-hour writes are dearer than 5-minute ones: charging them at the 5-minute rate would undercount
    at_5m = expected_nano(data_price("anthropic", "claude-sonnet-4-6"),
                          **{**counts, "cache_write_5m": 300, "cache_write_1h": 0})
    assert want > at_5m
    stored = gw.app.store.list_events()[0]  # read back through the ledger codec
    assert stored.usage == event.usage


def test_anthropic_stream_meters_one_hour_writes_and_searches(gw: Harness) -> None:
    client = gw.anthropic(gw.key(team="ml"))
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=LONG,
                                tools=[SEARCH_TOOL]) as stream:
        final = stream.get_final_message()
    counts = anthropic_counts(final.usage)
    assert counts["cache_write_1h"] == 200 and counts["web_searches"] == 1
    event = only_event(gw)
    assert event.cost_nano == expected_nano(data_price("anthropic", "claude-sonnet-4-6"), **counts)


def test_openai_cache_write_tokens(gw: Harness) -> None:
    client = gw.openai(gw.key(team="ml"))
    completion = client.chat.completions.create(model="gpt-5.6-sol", messages=LONG, max_tokens=64)
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    written = usage.prompt_tokens_details.model_dump()["cache_write_tokens"]
    assert written == 40
    cached = usage.prompt_tokens_details.cached_tokens or 0
    reasoning = usage.completion_tokens_details.reasoning_tokens if usage.completion_tokens_details else 0
    want = expected_nano(data_price("openai", "gpt-5.6-sol"), input_total=usage.prompt_tokens,
                         output_total=usage.completion_tokens, cache_read=cached, cache_write_5m=written,
                         reasoning=reasoning or 0)
    event = only_event(gw)
    assert event.cost_nano == want and event.usage.cache_write_tokens == 40


def test_openai_audio_tokens_in_and_out(gw: Harness) -> None:
    client = gw.openai(gw.key(team="ml"))
    completion = client.chat.completions.create(model="gpt-audio", messages=LONG, max_tokens=64)
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens_details and usage.completion_tokens_details
    audio_in, audio_out = usage.prompt_tokens_details.audio_tokens, usage.completion_tokens_details.audio_tokens
    assert (audio_in, audio_out) == (10, 8)
    want = expected_nano(data_price("openai", "gpt-audio"), input_total=usage.prompt_tokens,
                         output_total=usage.completion_tokens, input_audio=audio_in or 0,
                         output_audio=audio_out or 0)
    event = only_event(gw)
    assert event.cost_nano == want
    assert (event.usage.count("input_audio"), event.usage.count("output_audio")) == (10, 8)
    assert reserved(gw, event) >= event.cost_nano  # audio out is the dearest output rate: still bounded


@pytest.mark.parametrize("stream", [False, True])
def test_priority_tier_is_charged_and_bounded_at_the_priority_price(gw: Harness, stream: bool) -> None:
    client = gw.openai(gw.key(team="ml"))
    if stream:
        chunks = list(client.chat.completions.create(model="gpt-5", messages=LONG, max_tokens=64,
                                                     service_tier="priority", stream=True,
                                                     stream_options={"include_usage": True}))
        usage, tier = chunks[-1].usage, chunks[-1].service_tier
    else:
        completion = client.chat.completions.create(model="gpt-5", messages=LONG, max_tokens=64,
                                                    service_tier="priority")
        usage, tier = completion.usage, completion.service_tier
    assert usage is not None and tier == "priority"
    reasoning = usage.completion_tokens_details.reasoning_tokens if usage.completion_tokens_details else 0
    counts = {"input_total": usage.prompt_tokens, "output_total": usage.completion_tokens,
              "reasoning": reasoning or 0}
    priority = expected_nano(data_price("openai", "gpt-5", service_tier="priority"), **counts)
    standard = expected_nano(data_price("openai", "gpt-5"), **counts)
    event = only_event(gw)
    assert event.cost_nano == priority > standard
    assert event.usage.conditions == (("service_tier", "priority"),)
    assert reserved(gw, event) >= event.cost_nano


def test_batch_processing_is_charged_at_the_batch_price(gw: Harness) -> None:
    client = gw.anthropic(gw.key(team="ml"))
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=LONG)
    assert message.usage.service_tier == "batch"
    counts = anthropic_counts(message.usage)
    batch = expected_nano(data_price("anthropic", "claude-haiku-4-5", processing="batch"), **counts)
    event = only_event(gw)
    assert event.cost_nano == batch < expected_nano(data_price("anthropic", "claude-haiku-4-5"), **counts)
    assert event.usage.conditions == (("processing", "batch"),)


def test_a_tool_billed_per_call_without_a_price_is_unknown_price(gw: Harness) -> None:
    if UNPRICED_SEARCH is None:
        pytest.skip("every Claude model in this price data has a web-search price")
    client = gw.anthropic(gw.key(team="ml"))
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        client.messages.create(model=UNPRICED_SEARCH, max_tokens=64, messages=LONG, tools=[SEARCH_TOOL])
    assert "no known price for web_searches" in str(info.value)
    [denied] = gw.app.store.list_decisions()
    assert denied.effect == "deny" and denied.result["code"] == "unknown_price"
    assert gw.app.store.list_events() == []
    # the provider reports searches the request did not announce: charged for the rest, flagged, never $0 ok
    message = client.messages.create(model=UNPRICED_SEARCH, max_tokens=64, messages=LONG)
    assert message.usage.server_tool_use is not None
    event = only_event(gw)
    assert event.status == "unpriced" and event.price_flagged and event.cost_nano > 0
    assert event.usage.count("web_searches") == 2


def test_openai_service_tier_is_visible_to_policies(gw: Harness) -> None:
    client = gw.openai(gw.key(team="ml"))
    client.chat.completions.create(model="gpt-5", messages=LONG, max_tokens=16, service_tier="flex")
    [decision] = gw.app.store.list_decisions()
    assert decision.input["params"]["service_tier"] == "flex"
    event = only_event(gw)
    assert event.usage.conditions == (("service_tier", "flex"),)


def test_the_tier_served_wins_over_the_tier_asked(gw: Harness) -> None:
    client = gw.openai(gw.key(team="ml"))
    completion = client.chat.completions.create(model="gpt-5-mini", messages=LONG, max_tokens=64,
                                                service_tier="priority")
    usage = completion.usage
    assert usage is not None and completion.service_tier == "default"
    reasoning = usage.completion_tokens_details.reasoning_tokens if usage.completion_tokens_details else 0
    counts = {"input_total": usage.prompt_tokens, "output_total": usage.completion_tokens,
              "reasoning": reasoning or 0}
    event = only_event(gw)
    assert event.cost_nano == expected_nano(data_price("openai", "gpt-5-mini"), **counts)
    assert event.usage.conditions == ()
    # the reservation covered the priority price that was asked for
    assert reserved(gw, event) >= expected_nano(data_price("openai", "gpt-5-mini", service_tier="priority"),
                                                **counts)


def test_anthropic_fast_mode_is_charged_and_bounded_at_the_fast_price(gw: Harness) -> None:
    fast_price = data_price("anthropic", "claude-opus-4-8", speed="fast")
    if fast_price.input_mtok == data_price("anthropic", "claude-opus-4-8").input_mtok:
        pytest.skip("no fast-mode price for claude-opus-4-8 in this price data")
    client = gw.anthropic(gw.key(team="ml"))
    message = client.messages.create(model="claude-opus-4-8", max_tokens=64, messages=LONG,
                                     extra_body={"speed": "fast"})
    counts = anthropic_counts(message.usage)
    event = only_event(gw)
    assert event.usage.conditions == (("speed", "fast"),)
    assert event.cost_nano == expected_nano(fast_price, **counts)
    [decision] = gw.app.store.list_decisions()
    sheet = gw.app.catalog.resolve("claude-opus-4-8", "anthropic")
    bound = int(decision.input["input_tokens_bound"])
    assert reserved(gw, event) == sheet.max_cost_nano(bound, 64, conditions=(("speed", "fast"),))
    assert reserved(gw, event) > sheet.max_cost_nano(bound, 64) and reserved(gw, event) >= event.cost_nano


def forwarded(server: BackgroundServer) -> dict[str, Any]:
    """The body the simulator received last (what the gateway forwarded)."""
    [last] = httpx.get(server.url + "/_simulator/requests", params={"limit": 1}).json()["requests"]
    body: dict[str, Any] = last["body"]
    return body


def test_the_gateway_caps_web_search_uses_and_the_bound_covers_them(gw: Harness, profiled: BackgroundServer) -> None:
    client = gw.anthropic(gw.key(team="ml"))
    message = client.messages.create(model="claude-opus-4-6", max_tokens=64, messages=LONG, tools=[SEARCH_TOOL])
    assert forwarded(profiled)["tools"] == [{**SEARCH_TOOL, "max_uses": 5}]  # gateway.default_max_tool_uses
    counts = anthropic_counts(message.usage)
    assert counts["web_searches"] == 5  # the simulator used every search it was allowed
    price = data_price("anthropic", "claude-opus-4-6")
    event = only_event(gw)
    assert event.cost_nano == expected_nano(price, **counts) and event.usage.count("web_searches") == 5
    [decision] = gw.app.store.list_decisions()
    assert decision.result["tool_uses"] == {"web_searches": 5}
    sheet = gw.app.catalog.resolve("claude-opus-4-6", "anthropic")
    bound = int(decision.input["input_tokens_bound"])
    assert reserved(gw, event) == sheet.max_cost_nano(bound, 64, units={"web_searches": 5}) >= event.cost_nano
    # the five searches alone are in the bound: without them it would be short of the cost
    searches = expected_nano(price, input_total=0, output_total=0, web_searches=5)
    assert searches == int(5 * price.web_searches_kcount / 1000 * 10**9) > 0  # per 1K searches, exact
    assert reserved(gw, event) - sheet.max_cost_nano(bound, 64) == searches


def test_a_client_max_uses_is_kept_and_bounded(gw: Harness, profiled: BackgroundServer) -> None:
    client = gw.anthropic(gw.key(team="ml"))
    tool = {**SEARCH_TOOL, "max_uses": 2}
    client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=LONG, tools=[tool],
                           stream=False)
    assert forwarded(profiled)["tools"] == [tool]
    [decision] = gw.app.store.list_decisions()
    assert decision.result["tool_uses"] == {"web_searches": 2}
    event = only_event(gw)
    assert reserved(gw, event) >= event.cost_nano


def test_the_default_max_uses_is_a_setting(make_gateway: Callable[..., Harness], profiled: BackgroundServer) -> None:
    gw = make_gateway(simulator_url=profiled.url, default_max_tool_uses=3)
    gw.anthropic(gw.key(team="ml")).messages.create(model="claude-sonnet-4-6", max_tokens=16, messages=LONG,
                                                    tools=[SEARCH_TOOL, {"name": "lookup", "input_schema": {}}])
    assert forwarded(profiled)["tools"][0]["max_uses"] == 3
    assert "max_uses" not in forwarded(profiled)["tools"][1]  # a client tool is not billed per use
    [decision] = gw.app.store.list_decisions()
    assert decision.result["tool_uses"] == {"web_searches": 3}


@pytest.mark.parametrize("max_uses", [0, -1, "5", True, 2**31])
def test_a_bad_max_uses_is_a_400_naming_it(gw: Harness, max_uses: Any) -> None:
    client = gw.anthropic(gw.key(team="ml"))
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model="claude-sonnet-4-6", max_tokens=16, messages=LONG,
                               tools=[{**SEARCH_TOOL, "max_uses": max_uses}])
    assert "tools[0].max_uses" in str(info.value)
    assert gw.app.store.list_events() == []


@pytest.mark.parametrize("stream", [False, True])
def test_chat_web_search_options_is_charged_one_search(gw: Harness, stream: bool) -> None:
    client = gw.openai(gw.key(team="ml"))
    if stream:
        chunks = list(client.chat.completions.create(model="gpt-5.6-sol", messages=LONG, max_tokens=64, stream=True,
                                                     stream_options={"include_usage": True},
                                                     web_search_options={}))
        usage = chunks[-1].usage
    else:
        usage = client.chat.completions.create(model="gpt-5.6-sol", messages=LONG, max_tokens=64,
                                               web_search_options={"search_context_size": "low"}).usage
    assert usage is not None and usage.prompt_tokens_details is not None
    reasoning = usage.completion_tokens_details.reasoning_tokens if usage.completion_tokens_details else 0
    price = data_price("openai", "gpt-5.6-sol")
    counts = {"input_total": usage.prompt_tokens, "output_total": usage.completion_tokens,
              "cache_read": usage.prompt_tokens_details.cached_tokens or 0,
              "cache_write_5m": usage.prompt_tokens_details.model_dump()["cache_write_tokens"],
              "reasoning": reasoning or 0}
    event = only_event(gw)
    assert event.usage.count("web_searches") == 1 and event.status == "ok" and not event.price_flagged
    assert event.cost_nano == expected_nano(price, **counts, web_searches=1)
    assert event.cost_nano > expected_nano(price, **counts)  # the search is not free
    [decision] = gw.app.store.list_decisions()
    assert decision.result["tool_uses"] == {"web_searches": 1}
    assert reserved(gw, event) >= event.cost_nano


def test_a_chat_call_without_web_search_options_is_charged_no_search(gw: Harness) -> None:
    client = gw.openai(gw.key(team="ml"))
    client.chat.completions.create(model="gpt-5.6-sol", messages=LONG, max_tokens=16)
    assert only_event(gw).usage.count("web_searches") == 0
    [decision] = gw.app.store.list_decisions()
    assert "tool_uses" not in decision.result


def test_a_billed_tool_the_protocol_cannot_cap_is_refused(gw: Harness) -> None:
    """No endpoint body passes validation with one today (Chat Completions tools are functions); the
    decision core still refuses a priced per-call unit it cannot bound, naming the field."""
    request = LlmRequest("openai", "chat.completions", "gpt-5.6-sol", 100, 100, 16,
                         params={"billed_units": ["web_searches"]})
    ctx = Context(team="ml")
    outcome = gw.app.core.admit(ctx, request, uncapped={"web_searches": "tools[1]"})
    assert isinstance(outcome, Denial) and outcome.status == 400 and outcome.code == "uncapped_billed_unit"
    assert outcome.message.startswith("tools[1]: enables web_searches")
    capped = gw.app.core.admit(ctx, request, tool_uses={"web_searches": 1})
    assert not isinstance(capped, Denial)
    gw.app.core.release(capped)
    with pytest.raises(openai.BadRequestError):  # the wire: an OpenAI-style search tool is not a chat tool
        gw.openai(gw.key(team="ml")).chat.completions.create(model="gpt-5.6-sol", messages=LONG, max_tokens=16,
                                                              tools=[{"type": "web_search"}])  # type: ignore[list-item]


def test_a_response_without_usage_is_charged_every_search_it_may_have_made(
        make_gateway: Callable[..., Harness]) -> None:
    async def no_usage(request: Request) -> JSONResponse:
        return JSONResponse({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-opus-4-6",
                             "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn"})

    with BackgroundServer(Starlette(routes=[Route("/v1/messages", no_usage, methods=["POST"])])) as upstream:
        gw = make_gateway(simulator_url=upstream.url)
        reply = httpx.post(gw.url + "/v1/messages", headers={"x-api-key": gw.key(team="ml")},
                           json={"model": "claude-opus-4-6", "max_tokens": 32, "messages": LONG,
                                 "tools": [SEARCH_TOOL]})
    assert reply.status_code == 200
    event = only_event(gw)
    assert event.status == "estimated" and event.usage.count("web_searches") == 5
    bound = event.usage.input_tokens
    price = data_price("anthropic", "claude-opus-4-6")
    assert event.cost_nano == expected_nano(price, input_total=bound, output_total=32, web_searches=5)
    assert expected_nano(price, input_total=bound, output_total=32) < event.cost_nano <= reserved(gw, event)
