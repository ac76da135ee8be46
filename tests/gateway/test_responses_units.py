"""The Responses adapter's pure pieces: validation naming the field, the input bound, built-in tool
caps, the stream meter (any chunking, cut streams), key scoping of forwarded routes, and the
simulator's endpoint as the official client reads it."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costplane.config import GatewaySettings, ProviderConfig
from costplane.gateway.protocols.base import (
    Enforced,
    Incoming,
    PassScope,
    RecordedResponse,
    RequestError,
    ResponseLookup,
)
from costplane.gateway.protocols.openai_responses import ADAPTER, ResponsesStreamMeter, measure_responses
from costplane.serving import BackgroundServer
from costplane.simulator.app import create_app
from costplane.simulator.config import SimulatorConfig
from costplane.simulator.tokens import count_chat_prompt_tokens, count_tokens

SETTINGS = GatewaySettings()
CREATE = ADAPTER.routes[0]
TOOLS = [{"type": "function", "name": "get_weather", "description": "Weather of a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


def incoming(body: Any, *, path: str = "/v1/responses", method: str = "POST", params: dict[str, str] | None = None,
             query: dict[str, str] | None = None) -> Incoming:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return Incoming(method, path, params or {}, query or {}, {"authorization": "Bearer k"}, raw)


def parse(body: Any) -> Any:
    return ADAPTER.parse(CREATE, incoming(body), SETTINGS)


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "hi"}, "model"),
    ({"model": "gpt-4o", "input": 3}, "input"),
    ({"model": "gpt-4o", "input": [{"role": "user", "content": [{"type": "input_txt", "text": "x"}]}]},
     "input[0].content[0].type"),
    ({"model": "gpt-4o", "input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
    ({"model": "gpt-4o", "input": [{"type": "bogus_item"}]}, "input[0].type"),
    ({"model": "gpt-4o", "input": "hi", "max_output_tokens": 8}, "max_output_tokens"),
    ({"model": "gpt-4o", "input": "hi", "tools": [{"type": "web_browser"}]}, "tools[0].type"),
    ({"model": "gpt-4o", "input": "hi", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"model": "gpt-4o", "input": "hi", "stream_options": {"include_obfuscation": False}}, "stream_options"),
    ({"model": "gpt-4o", "input": "hi", "background": True, "store": False}, "store"),
    ({"model": "gpt-4o"}, "input"),
    ({"model": "gpt-4o", "input": "hi", "max_tool_calls": -1}, "max_tool_calls"),
    (b"[1]", "body"),
])
def test_bad_bodies_name_their_field(body: Any, param: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse(body)
    assert caught.value.param == param
    assert caught.value.status == 400


def test_facts_of_a_request() -> None:
    facts = parse({"model": "gpt-4o", "input": "hi", "instructions": "be brief", "max_output_tokens": 64,
                   "temperature": 0, "previous_response_id": "resp_1", "tools": TOOLS})
    assert (facts.endpoint, facts.model, facts.max_tokens, facts.stream) == ("responses", "gpt-4o", 64, False)
    assert facts.continues == "resp_1" and facts.cacheable and facts.tool_uses == {}
    assert facts.params["temperature"] == 0
    assert parse({"model": "m", "conversation": {"id": "conv_9"}}).continues == "conversation:conv_9"
    assert parse({"model": "m", "prompt": {"id": "pmpt_1"}}).continues == "prompt:pmpt_1"
    assert parse({"model": "m", "input": "x", "stream": True}).cacheable is False
    assert facts.continues_unseen_bound == 128_000 and facts.continues_param == "previous_response_id"
    unseen = parse({"model": "gpt-5.6-luna", "conversation": "conv_1"})
    assert unseen.continues_unseen_bound == 1_050_000 and unseen.continues_param == "conversation"
    assert parse({"model": "private-llm", "previous_response_id": "r"}).continues_unseen_bound is None


def test_built_in_tools_are_capped_by_max_tool_calls() -> None:
    facts = parse({"model": "gpt-4o", "input": "news?", "tools": [{"type": "web_search"}, {"type": "file_search",
                                                                                         "vector_store_ids": ["v"]}]})
    assert facts.body["max_tool_calls"] == SETTINGS.default_max_tool_uses
    assert facts.tool_uses == {"web_searches": 5, "storage_searches": 5}
    assert facts.params["billed_units"] == ["storage_searches", "web_searches"]
    own = parse({"model": "gpt-4o", "input": "x", "tools": [{"type": "web_search_preview"}], "max_tool_calls": 2})
    assert own.body["max_tool_calls"] == 2 and own.tool_uses == {"web_searches": 2}
    assert "max_tool_calls" not in parse({"model": "gpt-4o", "input": "x", "tools": TOOLS}).body


def test_upstream_request_carries_the_enforced_model_and_cap() -> None:
    facts = parse({"model": "gpt-4o", "input": "hi", "metadata": {"a": "b"}})
    provider = ProviderConfig("openai", "openai", "http://up/v1", api_key_env=None)
    up = ADAPTER.build_upstream(facts, Enforced(provider, "gpt-4o-mini", 300, {"temperature": 0.5}),
                                incoming({}))
    body = orjson.loads(up.body)
    assert (up.method, up.url) == ("POST", "http://up/v1/responses")
    assert (body["model"], body["max_output_tokens"], body["temperature"]) == ("gpt-4o-mini", 300, 0.5)
    assert up.headers["authorization"] == "Bearer costplane"


class Lookup(ResponseLookup):
    def __init__(self, records: dict[str, RecordedResponse]) -> None:
        self.records = records

    def find(self, response_id: str) -> RecordedResponse | None:
        return self.records.get(response_id)


def test_forwarded_routes_reach_only_the_keys_own_responses() -> None:
    provider = ProviderConfig("openai", "openai", "http://up/v1")
    lookup = Lookup({"resp_a": RecordedResponse("key_a", "openai", "gpt-4o", 10, 5)})
    routes = {r.operation: r for r in ADAPTER.routes}
    for operation, method, suffix in (("retrieve", "GET", ""), ("delete", "DELETE", ""),
                                      ("cancel", "POST", "/cancel"), ("input_items", "GET", "/input_items")):
        route = routes[operation]
        request = incoming(b"", method=method, params={"response_id": "resp_a"})
        up = ADAPTER.passthrough(route, request, PassScope("key_a", (provider,), lookup))
        assert (up.method, up.url) == (method, f"http://up/v1/responses/resp_a{suffix}")
        for key, rid in (("key_b", "resp_a"), ("key_a", "resp_unknown")):
            with pytest.raises(RequestError) as caught:
                ADAPTER.passthrough(route, incoming(b"", method=method, params={"response_id": rid}),
                                    PassScope(key, (provider,), lookup))
            assert caught.value.status == 404
    reply = orjson.loads(ADAPTER.error(404, "response_not_found", "gone").body)
    assert reply["error"]["type"] == "not_found_error" and reply["error"]["code"] == "response_not_found"
    query = incoming(b"", method="GET", params={"response_id": "resp_a"}, query={"include[]": "x y"})
    url = ADAPTER.passthrough(routes["retrieve"], query, PassScope("key_a", (provider,), lookup)).url
    assert url.endswith("/responses/resp_a?include%5B%5D=x+y")


# -- against the simulator -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sim() -> Iterator[str]:
    with BackgroundServer(create_app(SimulatorConfig())) as server:
        yield server.url


def _stream_bytes(url: str, body: dict[str, Any]) -> bytes:
    response = httpx.post(url + "/v1/responses", json={**body, "stream": True}, timeout=10)
    assert response.status_code == 200
    return response.content


def _chunked(data: bytes, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    at = 0
    while at < len(data):
        size = rng.randint(1, 200)
        yield data[at:at + size]
        at += size


@pytest.mark.parametrize("seed", range(4))
def test_stream_meter_reads_usage_whatever_the_chunking(sim: str, seed: int) -> None:
    body = {"model": "gpt-5", "input": "What is in the news?", "tools": [{"type": "web_search"}]}
    data = _stream_bytes(sim, body)
    plain = httpx.post(sim + "/v1/responses", json=body, timeout=10).json()
    meter = ResponsesStreamMeter()
    events = [event for chunk in _chunked(data, seed) for event in meter.feed(chunk)]
    assert b"".join(e for e, _ in events) == data  # relayed unchanged
    assert [final for _, final in events].count(True) == 1 and events[-1][1]
    usage = meter.usage
    assert usage is not None and meter.done and meter.response_id and meter.response_id.startswith("resp_")
    assert usage.output_tokens == plain["usage"]["output_tokens"]
    assert usage.reasoning_tokens == plain["usage"]["output_tokens_details"]["reasoning_tokens"] > 0
    assert usage.count("web_searches") == 1
    assert meter.deltas > 0


def test_cut_stream_is_charged_for_what_was_seen(sim: str) -> None:
    data = _stream_bytes(sim, {"model": "gpt-4o", "input": "Tell me more", "tools": [{"type": "web_search"}]})
    cut = data[: data.index(b"response.output_text.done")]
    meter = ResponsesStreamMeter()
    meter.feed(cut)
    assert not meter.done and meter.usage is None
    charged = meter.charged(True, 42)
    assert charged.input_tokens == 42 and charged.output_tokens == meter.deltas > 0
    assert charged.count("web_searches") == 1


def test_the_bound_covers_the_simulated_prompt(sim: str) -> None:
    client = openai.OpenAI(base_url=sim + "/v1", api_key="x", max_retries=0)
    bodies: list[dict[str, Any]] = [
        {"input": "Hello", "instructions": "Be brief, précis — 简洁"},
        {"input": [{"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]}],
         "tools": TOOLS},
        {"input": [{"role": "user", "content": "Weather?"},
                   {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city":"x"}'},
                   {"type": "function_call_output", "call_id": "c1", "output": "sunny, 21°C"},
                   {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "think"}]}],
         "tools": TOOLS},
    ]
    for body in bodies:
        response = client.responses.create(model="gpt-4o", **body)
        assert response.usage is not None
        assert measure_responses(body).bound >= response.usage.input_tokens


def test_simulator_counts_instructions_and_input_as_messages(sim: str) -> None:
    payload = httpx.post(sim + "/v1/responses", json={"model": "gpt-4o", "input": "Hello there",
                                                       "instructions": "Be brief"}, timeout=10).json()
    expected = count_chat_prompt_tokens([{"role": "system", "content": "Be brief"},
                                         {"role": "user", "content": "Hello there"}])
    assert payload["usage"]["input_tokens"] == expected
    assert payload["usage"]["output_tokens"] == count_tokens(payload["output"][0]["content"][0]["text"])


_TEXT = st.text(max_size=60)
_ITEM = st.one_of(
    st.builds(lambda role, text: {"role": role, "content": text}, st.sampled_from(["user", "assistant", "developer"]),
              _TEXT),
    st.builds(lambda text: {"role": "user", "content": [{"type": "input_text", "text": text}]}, _TEXT),
    st.builds(lambda args: {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": args},
              _TEXT),
    st.builds(lambda out: {"type": "function_call_output", "call_id": "c1", "output": out}, _TEXT),
    st.builds(lambda text: {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": text}]},
              _TEXT),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(_ITEM, min_size=1, max_size=6), instructions=st.one_of(st.none(), _TEXT),
       tools=st.booleans())
def test_the_bound_covers_any_simulated_prompt(sim: str, items: list[dict[str, Any]], instructions: str | None,
                                               tools: bool) -> None:
    body: dict[str, Any] = {"input": items, **({"instructions": instructions} if instructions else {}),
                            **({"tools": TOOLS, "tool_choice": "none"} if tools else {})}
    reply = httpx.post(sim + "/v1/responses", json={"model": "gpt-4o", **body}, timeout=10)
    assert reply.status_code == 200, reply.text
    assert measure_responses(body).bound >= reply.json()["usage"]["input_tokens"]


def test_a_compaction_is_bounded_by_the_context_window() -> None:
    compact = next(r for r in ADAPTER.routes if r.operation == "compact")
    facts = ADAPTER.parse(compact, incoming({"model": "gpt-4o-mini", "previous_response_id": "resp_1"}), SETTINGS)
    assert (facts.endpoint, facts.max_tokens, facts.continues_unseen_bound) == ("responses.compact", 128_000, 128_000)
    for body, param in (({"model": "private-llm", "input": "x"}, "model"),
                        ({"model": "gpt-4o-mini", "input": "x", "stream": True}, "stream")):
        with pytest.raises(RequestError) as caught:
            ADAPTER.parse(compact, incoming(body), SETTINGS)
        assert caught.value.param == param
    provider = ProviderConfig("openai", "openai", "http://up/v1")
    up = ADAPTER.build_upstream(facts, Enforced(provider, "gpt-4o-mini", 128_000, {}), incoming({}))
    assert up.url == "http://up/v1/responses/compact" and "max_output_tokens" not in orjson.loads(up.body)
    with pytest.raises(RequestError) as capped:  # a policy's output cap cannot be enforced on a compaction
        ADAPTER.build_upstream(facts, Enforced(provider, "gpt-4o-mini", 500, {}), incoming({}))
    assert capped.value.status == 403


def test_a_token_count_goes_to_the_provider_of_its_model() -> None:
    count = next(r for r in ADAPTER.routes if r.operation == "count")
    providers = (ProviderConfig("anthropic", "anthropic", "http://a/v1", models=("claude-*",)),
                 ProviderConfig("openai", "openai", "http://o/v1", models=("gpt-*",), aliases={"fast": "gpt-4o-mini"}))
    lookup = Lookup({"resp_a": RecordedResponse("key_a", "openai", "gpt-4o", 10, 5)})
    up = ADAPTER.passthrough(count, incoming({"model": "fast", "input": "hi"}), PassScope("key_a", providers, lookup))
    assert up.url == "http://o/v1/responses/input_tokens" and orjson.loads(up.body)["model"] == "gpt-4o-mini"
    for body, key, status in (({"input": "hi"}, "key_a", 400), ({"model": "claude-x", "input": "hi"}, "key_a", 404),
                              ({"model": "gpt-4o", "previous_response_id": "resp_a"}, "key_b", 404)):
        with pytest.raises(RequestError) as caught:
            ADAPTER.passthrough(count, incoming(body), PassScope(key, providers, lookup))
        assert caught.value.status == status
