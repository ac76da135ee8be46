"""The Gemini adapter's pure pieces: output caps with thinking, input bounds against the simulator's
token counts, the upstream request (model in the path, the provider's key, no client key), the
stream meter under any chunking, and Google's error shape."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costplane.config import GatewaySettings, ProviderConfig
from costplane.gateway.protocols.base import AdapterRoute, Enforced, Incoming, RequestError
from costplane.gateway.protocols.gemini import ADAPTER, GeminiStreamMeter
from costplane.gateway.validate_gemini import CONTEXT_BOUND, output_caps
from costplane.simulator.gemini_api import _prompt  # the simulator's own token rule

SETTINGS = GatewaySettings()
PROVIDER = ProviderConfig("gemini", "gemini", "http://upstream.test", api_key_env="CP_TEST_GEMINI_KEY",
                          models=("gemini-*",))


def route(operation: str) -> AdapterRoute:
    return next(r for r in ADAPTER.routes if r.operation == operation and r.path.startswith("/v1beta/"))


def incoming(body: Any, operation: str = "generate", model: str = "gemini-2.5-flash",
             query: dict[str, str] | None = None) -> Incoming:
    path = f"/v1beta/models/{model}:{route(operation).path.rsplit(':', 1)[1]}"
    return Incoming("POST", path, {"model": model}, query or {}, {"x-goog-api-key": "cp_client"},
                    orjson.dumps(body))


def text(value: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": value}]}


def test_the_bound_counts_the_thinking_budget_and_the_caps_sent_never_pass_it() -> None:
    body = {"contents": [text("hi")], "generationConfig": {"maxOutputTokens": 40,
                                                           "thinkingConfig": {"thinkingBudget": 24}}}
    facts = ADAPTER.parse(route("generate"), incoming(body), SETTINGS)
    assert facts.max_tokens == 64 and facts.params["thinking_budget"] == 24
    sent = orjson.loads(ADAPTER.build_upstream(facts, Enforced(PROVIDER, "gemini-2.5-flash", 64, {}),
                                               incoming(body)).body)
    assert sent["generationConfig"] == {"maxOutputTokens": 40, "thinkingConfig": {"thinkingBudget": 24}}
    capped = orjson.loads(ADAPTER.build_upstream(facts, Enforced(PROVIDER, "gemini-2.5-flash", 10, {}),
                                                 incoming(body)).body)["generationConfig"]
    assert capped["maxOutputTokens"] + capped["thinkingConfig"]["thinkingBudget"] <= 10
    unset = ADAPTER.parse(route("generate"), incoming({"contents": [text("hi")]}), SETTINGS)
    assert unset.max_tokens == SETTINGS.default_max_tokens


@given(st.one_of(st.none(), st.integers(1, 10**6)), st.integers(1, 10**6))
def test_output_caps_sum_within_the_enforced_cap(budget: int | None, enforced: int) -> None:
    limit, sent = output_caps(budget, enforced)
    assert limit >= 1 and limit + (sent or 0) <= max(enforced, 1)
    if budget is not None and budget < enforced:
        assert sent == budget and limit == enforced - budget


_TEXT = st.text(min_size=0, max_size=80)
_PART = st.one_of(_TEXT.map(lambda t: {"text": t}),
                  st.dictionaries(st.text(max_size=8), _TEXT, max_size=3).map(
                      lambda a: {"functionCall": {"name": "f", "args": a}}),
                  st.just({"inlineData": {"mimeType": "image/png", "data": "iVBOR"}}))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_PART, min_size=1, max_size=4), min_size=1, max_size=5), st.one_of(st.none(), _TEXT))
def test_input_bound_is_at_least_what_the_simulator_counts(contents: list[list[dict[str, Any]]],
                                                           system: str | None) -> None:
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": parts} for parts in contents]}
    if system is not None:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    body["tools"] = [{"functionDeclarations": [{"name": "lookup", "parameters": {"type": "object"}}]}]
    facts = ADAPTER.parse(route("generate"), incoming(body), SETTINGS)
    counted, _ = _prompt(body, body["contents"])
    assert facts.size.bound >= counted


def test_what_the_request_cannot_bound_is_bounded_by_the_context_window() -> None:
    audio = {"contents": [{"parts": [{"inlineData": {"mimeType": "audio/wav", "data": "UklG"}}]}]}
    search = {"contents": [text("news?")], "tools": [{"googleSearch": {}}]}
    assert ADAPTER.parse(route("generate"), incoming(audio), SETTINGS).size.bound >= CONTEXT_BOUND
    grounded = ADAPTER.parse(route("generate"), incoming(search), SETTINGS)
    assert grounded.size.bound >= CONTEXT_BOUND and grounded.tool_uses == {"web_searches": 1}
    per_query = ADAPTER.parse(route("generate"), incoming(search, model="gemini-3-pro-preview"), SETTINGS)
    assert per_query.uncapped == {"web_searches": "tools[0].googleSearch"}


@pytest.mark.parametrize(("body", "param"), [
    ({"contents": []}, "contents"),
    ({"contents": [{"parts": []}]}, "contents[0].parts"),
    ({"contents": [text("x")], "generationConfig": {"candidateCount": 2}}, "generationConfig.candidateCount"),
    ({"contents": [text("x")], "generation_config": {"thinking_config": {"thinking_budget": -5}}},
     "generation_config.thinking_config.thinking_budget"),
    ({"contents": [text("x")], "generationConfig": {}, "generation_config": {}}, "generationConfig"),
    ({"contents": [text("x")], "cachedContent": "cachedContents/1"}, "cachedContent"),
])
def test_bad_bodies_name_their_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(RequestError) as refused:
        ADAPTER.parse(route("generate"), incoming(body), SETTINGS)
    assert refused.value.param == param and refused.value.status == 400


def test_upstream_request_carries_the_enforced_model_and_the_providers_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CP_TEST_GEMINI_KEY", "provider-secret")
    body = {"contents": [text("hi")], "generation_config": {"max_output_tokens": 5, "temperature": 1}}
    request = incoming(body, "stream", query={"alt": "sse", "key": "cp_client"})
    facts = ADAPTER.parse(route("stream"), request, SETTINGS)
    assert facts.stream and facts.max_tokens == 5
    out = ADAPTER.build_upstream(facts, Enforced(PROVIDER, "gemini-2.0-flash", 5, {"temperature": 0}), request)
    assert out.url == "http://upstream.test/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    assert out.headers["x-goog-api-key"] == "provider-secret" and "cp_client" not in repr(out)
    assert orjson.loads(out.body)["generation_config"] == {"max_output_tokens": 5, "temperature": 0}
    embed = {"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}}]}
    facts = ADAPTER.parse(route("batch_embed"), incoming(embed, "batch_embed", "gemini-embedding-001"), SETTINGS)
    assert facts.endpoint == "embeddings" and facts.size.bound >= 1
    out = ADAPTER.build_upstream(facts, Enforced(PROVIDER, "gemini-embedding-002", 0, {}), incoming(embed))
    assert orjson.loads(out.body)["requests"][0]["model"] == "models/gemini-embedding-002"


def _chunks(final_usage: dict[str, int]) -> list[dict[str, Any]]:
    first = {"candidates": [{"content": {"parts": [{"text": "Hel"}], "role": "model"}, "index": 0}],
             "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 1}, "responseId": "r1"}
    last = {"candidates": [{"content": {"parts": [{"text": "lo"}], "role": "model"}, "finishReason": "STOP",
                            "index": 0}], "usageMetadata": final_usage, "responseId": "r1"}
    return [first, last]


@pytest.mark.parametrize("sse", [True, False])
@pytest.mark.parametrize("step", [1, 7, 10_000])
def test_stream_meter_under_any_chunking(sse: bool, step: int) -> None:
    usage = {"promptTokenCount": 7, "candidatesTokenCount": 2, "thoughtsTokenCount": 5,
             "cachedContentTokenCount": 4}
    elements = [orjson.dumps(c) for c in _chunks(usage)]
    raw = b"".join(b"data: " + e + b"\r\n\r\n" for e in elements) if sse else b"[" + b",\r\n".join(elements) + b"]"
    meter = GeminiStreamMeter("gemini-2.5-flash", sse)
    relayed: list[tuple[bytes, bool]] = []
    for start in range(0, len(raw), step):
        relayed.extend(meter.feed(raw[start:start + step]))
    assert b"".join(event for event, _ in relayed).replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")
    assert [final for _, final in relayed if final] == [True] and meter.done and meter.response_id == "r1"
    charged = meter.charged(False, 0)
    assert (charged.input_tokens, charged.output_tokens, charged.reasoning_tokens, charged.cache_read_tokens) == (
        7, 7, 5, 4)
    assert meter.cost_note("0.01", "dec_1") == b""  # google-genai would parse an SSE comment as JSON


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=20), min_size=1, max_size=6), st.lists(st.integers(1, 40), min_size=1, max_size=30))
def test_array_stream_elements_survive_any_split(texts: list[str], cuts: list[int]) -> None:
    """Text with brackets, braces, quotes and escapes inside strings never confuses the element split."""
    chunks = [{"candidates": [{"content": {"parts": [{"text": t}]}, "index": 0,
                               **({"finishReason": "STOP"} if i == len(texts) - 1 else {})}],
               "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": i + 1}} for i, t in enumerate(texts)]
    raw = b"[" + b",\r\n".join(orjson.dumps(c) for c in chunks) + b"]"
    meter = GeminiStreamMeter("gemini-2.0-flash", False)
    relayed: list[tuple[bytes, bool]] = []
    start = 0
    for size in cuts * (len(raw) // max(1, sum(cuts)) + 1):
        relayed.extend(meter.feed(raw[start:start + size]))
        start += size
        if start >= len(raw):
            break
    relayed.extend(meter.feed(raw[start:]))
    assert b"".join(event for event, _ in relayed) == raw
    assert [final for _, final in relayed].count(True) == 1 and meter.done
    assert meter.usage is not None and meter.usage.output_tokens == len(texts)
    assert meter.deltas == sum(1 for t in texts if t)


def test_a_cut_stream_is_charged_for_the_parts_received() -> None:
    meter = GeminiStreamMeter("gemini-2.0-flash", True)
    first = _chunks({})[0]
    first["usageMetadata"] = {"promptTokenCount": 7}  # a provider that counts candidates only at the end
    meter.feed(b"data: " + orjson.dumps(first) + b"\n\n")
    charged = meter.charged(True, 99)
    assert (charged.input_tokens, charged.output_tokens) == (7, 1) and not meter.done


def test_errors_use_googles_shape() -> None:
    reply = ADAPTER.error(402, "budget_exceeded", "budget 'team' exhausted")
    error = orjson.loads(reply.body)["error"]
    assert (error["code"], error["status"], error["message"]) == (402, "RESOURCE_EXHAUSTED",
                                                                   "budget 'team' exhausted")
    assert error["details"][0]["reason"] == "budget_exceeded"
    for status, name in ((403, "PERMISSION_DENIED"), (429, "RESOURCE_EXHAUSTED"), (503, "UNAVAILABLE")):
        assert orjson.loads(ADAPTER.error(status, "x", "m").body)["error"]["status"] == name
    cut = ADAPTER.stream_error("upstream stream was cut", "upstream_cut")
    assert cut.startswith(b"data: ") and orjson.loads(cut[6:])["error"]["code"] == 502
