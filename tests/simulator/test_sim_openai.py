"""OpenAI-compatible endpoints, driven by the official `openai` SDK over real HTTP."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import openai
import pytest

from costplane.simulator.tokens import count_chat_prompt_tokens, count_tokens

FORCE = "x-simulator-output-tokens"


def _messages(text: str) -> list[Any]:
    return [{"role": "system", "content": "You are terse."}, {"role": "user", "content": text}]


def test_plain_chat_usage_matches_token_rule(oai: openai.OpenAI) -> None:
    messages = _messages("How much did the ML team spend last month?")
    reply = oai.chat.completions.create(model="gpt-4o", messages=messages)
    usage = reply.usage
    assert usage is not None
    assert usage.prompt_tokens == count_chat_prompt_tokens(messages)
    text = reply.choices[0].message.content or ""
    assert usage.completion_tokens == count_tokens(text)
    assert 16 <= usage.completion_tokens <= 200
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "gpt-4o" and reply.object == "chat.completion"


def test_stream_equals_plain_and_reports_usage(oai: openai.OpenAI) -> None:
    messages = _messages("Stream me something " + uuid.uuid4().hex)
    plain = oai.chat.completions.create(model="gpt-4o-mini", messages=messages)
    chunks = list(oai.chat.completions.create(model="gpt-4o-mini", messages=messages,
                                              stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    assert plain.usage is not None
    assert last.usage.prompt_tokens == plain.usage.prompt_tokens
    assert last.usage.completion_tokens == plain.usage.completion_tokens == count_tokens(text)


def test_stream_without_include_usage_has_no_usage_chunk(oai: openai.OpenAI) -> None:
    chunks = list(oai.chat.completions.create(model="gpt-4o", messages=_messages("no usage"),
                                              stream=True))
    assert all(c.choices and c.usage is None for c in chunks)


def test_max_tokens_caps_with_finish_reason_length(oai: openai.OpenAI) -> None:
    messages = _messages("cap me")
    reply = oai.chat.completions.create(model="gpt-4o", messages=messages, max_tokens=5)
    assert reply.usage is not None and reply.usage.completion_tokens == 5
    assert reply.choices[0].finish_reason == "length"
    reply = oai.chat.completions.create(model="gpt-4o", messages=messages,
                                        max_completion_tokens=500, extra_headers={FORCE: "40"})
    assert reply.usage is not None and reply.usage.completion_tokens == 40
    assert reply.choices[0].finish_reason == "stop"


def test_forced_output_tokens_is_exact_and_capped(oai: openai.OpenAI) -> None:
    for n in (0, 1, 7, 123):
        reply = oai.chat.completions.create(model="gpt-4o", messages=_messages("force"),
                                            extra_headers={FORCE: str(n)})
        assert reply.usage is not None and reply.usage.completion_tokens == n
        assert count_tokens(reply.choices[0].message.content or "") == n
    reply = oai.chat.completions.create(model="gpt-4o", messages=_messages("force"),
                                        max_tokens=10, extra_headers={FORCE: "50"})
    assert reply.usage is not None and reply.usage.completion_tokens == 10
    assert reply.choices[0].finish_reason == "length"


def test_reasoning_models_report_reasoning_tokens(oai: openai.OpenAI) -> None:
    for model in ("o1", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini"):
        reply = oai.chat.completions.create(model=model, messages=_messages("think"),
                                            extra_headers={FORCE: "30"})
        usage = reply.usage
        assert usage is not None and usage.completion_tokens_details is not None
        assert usage.completion_tokens == 30 and usage.completion_tokens_details.reasoning_tokens == 15
        assert count_tokens(reply.choices[0].message.content or "") == 15


def test_answers_are_deterministic(oai: openai.OpenAI) -> None:
    def ask(text: str, model: str = "gpt-4o") -> str:
        reply = oai.chat.completions.create(model=model, messages=_messages(text))
        return reply.choices[0].message.content or ""

    assert ask("same question") == ask("same question")
    assert ask("same question") != ask("another question")
    assert ask("same question") != ask("same question", model="gpt-4.1")


def test_prompt_caching_of_long_seen_prefixes(oai: openai.OpenAI) -> None:
    system = "Policy manual " + uuid.uuid4().hex + " " + " clause" * 1300
    first = oai.chat.completions.create(model="gpt-4o", messages=[
        {"role": "system", "content": system}, {"role": "user", "content": "first question"}])
    second = oai.chat.completions.create(model="gpt-4o", messages=[
        {"role": "system", "content": system}, {"role": "user", "content": "second question"}])
    assert first.usage is not None and second.usage is not None
    assert first.usage.prompt_tokens_details is not None and second.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached is not None and cached >= 1024 and cached % 128 == 0
    assert cached <= second.usage.prompt_tokens
    short: list[Any] = [{"role": "user", "content": "short prompt " + uuid.uuid4().hex}]
    for _ in range(2):
        reply = oai.chat.completions.create(model="gpt-4o", messages=short)
        assert reply.usage is not None and reply.usage.prompt_tokens_details is not None
        assert reply.usage.prompt_tokens_details.cached_tokens == 0


def test_embeddings(oai: openai.OpenAI) -> None:
    result = oai.embeddings.create(model="text-embedding-3-small", input=["hello world", "budget"])
    assert [d.index for d in result.data] == [0, 1]
    assert len(result.data[0].embedding) == 1536
    assert math.isclose(sum(v * v for v in result.data[0].embedding), 1.0, rel_tol=1e-4)
    assert result.usage.prompt_tokens == result.usage.total_tokens == 3
    as_float = oai.embeddings.create(model="text-embedding-3-small", input="hello world",
                                     encoding_format="float")
    assert as_float.data[0].embedding == pytest.approx(result.data[0].embedding, abs=1e-6)
    small = oai.embeddings.create(model="text-embedding-3-large", input=[[1, 2, 3]], dimensions=64)
    assert len(small.data[0].embedding) == 64 and small.usage.prompt_tokens == 3


def test_models_list(oai: openai.OpenAI) -> None:
    ids = [m.id for m in oai.models.list()]
    assert "gpt-4o" in ids and "text-embedding-3-small" in ids
    assert not any(i.startswith("claude") for i in ids)


def test_function_tools_are_called_until_a_tool_result_answers(oai: openai.OpenAI) -> None:
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}}]
    ask: Any = [{"role": "user", "content": "Weather in Paris?"}]
    called = oai.chat.completions.create(model="gpt-4o-mini", messages=ask, tools=tools)
    choice = called.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    arguments = json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert isinstance(arguments["city"], str) and isinstance(arguments["days"], int)
    streamed = list(oai.chat.completions.create(model="gpt-4o-mini", messages=ask, tools=tools, stream=True))
    deltas = [d for c in streamed if c.choices for d in c.choices[0].delta.tool_calls or ()]
    pieces = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert pieces == call.function.arguments  # type: ignore[union-attr]
    answered = [*ask, {"role": "assistant", "tool_calls": [call.model_dump()]},
                {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    reply = oai.chat.completions.create(model="gpt-4o-mini", messages=answered, tools=tools)
    assert reply.choices[0].finish_reason == "stop" and reply.choices[0].message.content
    none = oai.chat.completions.create(model="gpt-4o-mini", messages=ask, tools=tools, tool_choice="none")
    assert none.choices[0].message.tool_calls is None
