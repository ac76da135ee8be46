"""The simulator's Gemini API, spoken to by the official `google-genai` client and by raw HTTP:
deterministic answers, Gemini-shaped usage (cached, thoughts, tool-use prompt tokens), function
calls, both stream framings, embeddings, countTokens, faults and cut streams."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest
from google import genai
from google.genai import errors, types

from costplane.serving import BackgroundServer
from costplane.simulator.app import create_app
from costplane.simulator.config import SimulatorConfig
from costplane.simulator.tokens import count_tokens

WEATHER = types.Tool(function_declarations=[types.FunctionDeclaration(
    name="get_weather", description="Current weather of a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}})])


@pytest.fixture(scope="module")
def sim() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(SimulatorConfig(cache_min_tokens=64, cache_increment=32))) as server:
        yield server


def client(url: str, **headers: str) -> genai.Client:
    return genai.Client(api_key="sim", http_options=types.HttpOptions(base_url=url, headers=headers or None))


def test_generate_is_deterministic_and_counts_thoughts_within_the_output_cap(sim: BackgroundServer) -> None:
    config = types.GenerateContentConfig(max_output_tokens=60, thinking_config=types.ThinkingConfig(
        thinking_budget=40, include_thoughts=True), system_instruction="Be brief.")
    c = client(sim.url)
    first = c.models.generate_content(model="gemini-2.5-flash", contents="Explain VAT", config=config)
    again = c.models.generate_content(model="gemini-2.5-flash", contents="Explain VAT", config=config)
    usage = first.usage_metadata
    assert usage is not None and first.text == again.text and first.text
    assert usage.candidates_token_count == count_tokens(first.text)
    assert usage.thoughts_token_count is not None and 0 < usage.thoughts_token_count <= 40
    assert usage.candidates_token_count + usage.thoughts_token_count <= 60
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count + \
        usage.thoughts_token_count
    parts = first.candidates[0].content.parts  # type: ignore[index, union-attr]
    assert parts is not None and parts[0].thought is True


def test_older_models_do_not_think_and_a_zero_budget_turns_thinking_off(sim: BackgroundServer) -> None:
    c = client(sim.url)
    old = c.models.generate_content(model="gemini-2.0-flash", contents="Hi")
    off = c.models.generate_content(
        model="gemini-2.5-flash", contents="Hi",
        config=types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=0)))
    assert old.usage_metadata is not None and not old.usage_metadata.thoughts_token_count
    assert off.usage_metadata is not None and not off.usage_metadata.thoughts_token_count


def test_function_call_then_text_after_the_result(sim: BackgroundServer) -> None:
    c = client(sim.url)
    config = types.GenerateContentConfig(tools=[WEATHER], automatic_function_calling=types.
                                         AutomaticFunctionCallingConfig(disable=True))
    asked = c.models.generate_content(model="gemini-2.5-flash", contents="Weather in Paris?", config=config)
    calls = asked.function_calls
    assert calls and calls[0].name == "get_weather" and set(calls[0].args or {}) == {"city", "days"}
    turns = [types.Content(role="user", parts=[types.Part(text="Weather in Paris?")]),
             types.Content(role="model", parts=[types.Part(function_call=calls[0])]),
             types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
                 name="get_weather", response={"forecast": "sunny"}))])]
    answered = c.models.generate_content(model="gemini-2.5-flash", contents=turns, config=config)
    assert not answered.function_calls and answered.text


def test_repeated_long_prompt_reports_cached_tokens(sim: BackgroundServer) -> None:
    c = client(sim.url)
    prompt = "Our refund policy covers every invoice issued within thirty days. " * 12
    c.models.generate_content(model="gemini-2.5-pro", contents=prompt + "First question?")
    second = c.models.generate_content(model="gemini-2.5-pro", contents=prompt + "Second question?")
    usage = second.usage_metadata
    assert usage is not None and usage.cached_content_token_count
    assert 0 < usage.cached_content_token_count <= usage.prompt_token_count  # type: ignore[operator]


def test_builtin_tools_report_tool_use_prompt_tokens(sim: BackgroundServer) -> None:
    c = client(sim.url)
    response = c.models.generate_content(
        model="gemini-2.5-flash", contents="Who won?",
        config=types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())]))
    assert response.usage_metadata is not None and response.usage_metadata.tool_use_prompt_token_count
    grounding = response.candidates[0].grounding_metadata  # type: ignore[index]
    assert grounding is not None and grounding.web_search_queries == ["Who won?"]


def test_stream_matches_the_plain_answer_in_both_framings(sim: BackgroundServer) -> None:
    c = client(sim.url)
    plain = c.models.generate_content(model="gemini-2.0-flash", contents="Tell me about ledgers")
    chunks = list(c.models.generate_content_stream(model="gemini-2.0-flash", contents="Tell me about ledgers"))
    assert "".join(ch.text or "" for ch in chunks) == plain.text
    assert chunks[-1].usage_metadata == plain.usage_metadata
    raw = httpx.post(f"{sim.url}/v1beta/models/gemini-2.0-flash:streamGenerateContent",
                     json={"contents": [{"role": "user", "parts": [{"text": "Tell me about ledgers"}]}]})
    elements = orjson.loads(raw.content)
    assert isinstance(elements, list) and len(elements) == len(chunks)
    assert elements[-1]["usageMetadata"]["candidatesTokenCount"] == plain.usage_metadata.candidates_token_count  # type: ignore[union-attr]


def test_count_tokens_and_embeddings(sim: BackgroundServer) -> None:
    c = client(sim.url)
    counted = c.models.count_tokens(model="gemini-2.5-flash", contents="Hello there, world")
    plain = c.models.generate_content(model="gemini-2.5-flash", contents="Hello there, world")
    assert counted.total_tokens == plain.usage_metadata.prompt_token_count  # type: ignore[union-attr]
    embedded = c.models.embed_content(model="gemini-embedding-001", contents=["alpha", "beta gamma"],
                                      config=types.EmbedContentConfig(output_dimensionality=8))
    assert embedded.embeddings is not None and [len(e.values or []) for e in embedded.embeddings] == [8, 8]
    single = httpx.post(f"{sim.url}/v1beta/models/gemini-embedding-001:embedContent",
                        json={"content": {"parts": [{"text": "alpha"}]}}).json()
    assert len(single["embedding"]["values"]) == 3072 and single["usageMetadata"]["promptTokenCount"] == 1


def test_errors_faults_and_cut_streams(sim: BackgroundServer) -> None:
    c, faulty = client(sim.url), client(sim.url, **{"x-simulator-fault": "503"})
    with pytest.raises(errors.ClientError) as bad:
        c.models.generate_content(model="gemini-2.5-flash", contents=[types.Content(role="robot", parts=[
            types.Part(text="hi")])])
    assert bad.value.code == 400 and bad.value.status == "INVALID_ARGUMENT"
    with pytest.raises(errors.ServerError) as fault:
        faulty.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert fault.value.code == 503 and fault.value.status == "UNAVAILABLE"
    unknown = httpx.post(f"{sim.url}/v1beta/models/gemini-2.5-flash:nope", json={})
    assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"
    received = b""
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream(
            "POST", f"{sim.url}/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
            headers={"x-simulator-fault": "cut", "x-simulator-output-tokens": "20"},
            json={"contents": [{"parts": [{"text": "Tell me more"}]}]}) as cut:
        for chunk in cut.iter_bytes():
            received += chunk
    events = [e for e in received.split(b"\n\n") if e.startswith(b"data: ")]
    assert 0 < len(events) < 20
    assert all(b"finishReason" not in e for e in events)
