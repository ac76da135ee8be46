"""Cross-vendor translation, checked by the official clients: every (served, client) pair of protocols,
plain and streamed, must parse in the client's own SDK with the text, the tool call and the usage intact;
requests survive a round trip through every other protocol."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import orjson
import pytest
from google import genai
from google.genai import types as gtypes

from costplane.gateway.translate import (
    WIRES,
    StreamTranslator,
    Untranslatable,
    anthropic_messages,
    gemini,
    openai_chat,
    openai_responses,
    read_chat,
    translate_reply,
    write_chat,
)
from costplane.gateway.translate.model import (
    Finish,
    Reply,
    ReplyUsage,
    Start,
    StreamEvent,
    Text,
    TextDelta,
    ToolArgs,
    ToolCall,
    ToolStart,
    UsageUpdate,
)

USAGE = ReplyUsage(input_tokens=120, output_tokens=30, cached_tokens=20, reasoning_tokens=5)
REPLY = Reply("abc123", "served-model", (Text("Hello there"), ToolCall("call_1", "get_weather", '{"city":"Paris"}')),
              "tool_calls", USAGE)
EVENTS: list[StreamEvent] = [
    Start("abc123", "served-model"), TextDelta("Hello "), TextDelta("there"),
    ToolStart(0, "call_1", "get_weather"), ToolArgs(0, '{"city":'), ToolArgs(0, '"Paris"}'),
    Finish("tool_calls"), UsageUpdate(USAGE),
]
WRITERS: dict[str, Callable[[Reply], dict[str, Any]]] = {
    "openai-chat": lambda r: openai_chat.write_reply(r, "served-model"),
    "openai-responses": lambda r: openai_responses.write_reply(r, "served-model"),
    "anthropic-messages": lambda r: anthropic_messages.write_reply(r, "served-model"),
    "gemini": lambda r: gemini.write_reply(r, "served-model"),
}


def _served_stream(wire: str) -> bytes:
    """The served protocol's stream of EVENTS, as its own writer frames it."""
    writer: Any = {"openai-chat": lambda: openai_chat.ChatStreamWriter("served-model", True),
                   "openai-responses": lambda: openai_responses.ResponsesStreamWriter("served-model"),
                   "anthropic-messages": lambda: anthropic_messages.MessagesStreamWriter("served-model"),
                   "gemini": lambda: gemini.GeminiStreamWriter("served-model")}[wire]()
    return b"".join(writer.feed(e) for e in EVENTS) + writer.close()


def _transport(body: bytes, stream: bool) -> httpx.Client:
    media = "text/event-stream" if stream else "application/json"
    return httpx.Client(transport=httpx.MockTransport(
        lambda request: httpx.Response(200, content=body, headers={"content-type": media})))


def _parse(client_wire: str, body: bytes, stream: bool) -> tuple[str, list[tuple[str, dict[str, Any]]], int, int]:
    """(text, [(tool name, arguments)], input tokens, output tokens) as the official client sees them."""
    http = _transport(body, stream)
    if client_wire == "openai-chat":
        chat = openai.OpenAI(api_key="k", base_url="http://gw/v1", http_client=http)
        if not stream:
            done = chat.chat.completions.create(model="asked", messages=[{"role": "user", "content": "hi"}])
            message = done.choices[0].message
            calls = [(c.function.name, orjson.loads(c.function.arguments)) for c in message.tool_calls or ()
                     if c.type == "function"]
            assert done.usage is not None
            return message.content or "", calls, done.usage.prompt_tokens, done.usage.completion_tokens
        text, names, args, usage = "", {}, {}, None
        for chunk in chat.chat.completions.create(model="asked", messages=[{"role": "user", "content": "hi"}],
                                                  stream=True, stream_options={"include_usage": True}):
            usage = chunk.usage or usage
            for choice in chunk.choices:
                text += choice.delta.content or ""
                for call in choice.delta.tool_calls or ():
                    if call.function and call.function.name:
                        names[call.index] = call.function.name
                    if call.function and call.function.arguments:
                        args[call.index] = args.get(call.index, "") + call.function.arguments
        assert usage is not None
        return text, [(names[i], orjson.loads(args[i])) for i in sorted(names)], usage.prompt_tokens, \
            usage.completion_tokens
    if client_wire == "openai-responses":
        responses = openai.OpenAI(api_key="k", base_url="http://gw/v1", http_client=http)
        if stream:
            final = None
            for event in responses.responses.create(model="asked", input="hi", stream=True):
                if event.type == "response.completed":
                    final = event.response
            assert final is not None
        else:
            final = responses.responses.create(model="asked", input="hi")
        calls = [(item.name, orjson.loads(item.arguments)) for item in final.output if item.type == "function_call"]
        assert final.usage is not None
        return final.output_text, calls, final.usage.input_tokens, final.usage.output_tokens
    if client_wire == "anthropic-messages":
        media = "text/event-stream" if stream else "application/json"
        claude = anthropic.Anthropic(api_key="k", base_url="http://gw", http_client=httpx2.Client(
            transport=httpx2.MockTransport(lambda r: httpx2.Response(200, content=body,
                                                                     headers={"content-type": media}))))
        if stream:
            hello: Any = [{"role": "user", "content": "hi"}]
            with claude.messages.stream(model="asked", max_tokens=50, messages=hello) as s:
                message = s.get_final_message()
        else:
            message = claude.messages.create(model="asked", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
        text = "".join(b.text for b in message.content if b.type == "text")
        calls = [(b.name, dict(b.input)) for b in message.content if b.type == "tool_use"]  # type: ignore[arg-type]
        u = message.usage
        total_in = u.input_tokens + (u.cache_read_input_tokens or 0) + (u.cache_creation_input_tokens or 0)
        return text, calls, total_in, u.output_tokens
    client = genai.Client(api_key="k", http_options=gtypes.HttpOptions(base_url="http://gw", httpx_client=http))
    if stream:
        chunks = list(client.models.generate_content_stream(model="asked", contents="hi"))
    else:
        chunks = [client.models.generate_content(model="asked", contents="hi")]
    text, calls, usage = "", [], None
    for chunk in chunks:
        for part in (chunk.candidates[0].content.parts or []) if chunk.candidates and chunk.candidates[0].content \
                else []:
            text += part.text or ""
            if part.function_call:
                calls.append((part.function_call.name or "", dict(part.function_call.args or {})))
        usage = chunk.usage_metadata or usage
    assert usage is not None
    return text, calls, usage.prompt_token_count or 0, (usage.candidates_token_count or 0) + (
        usage.thoughts_token_count or 0)


@pytest.mark.parametrize("client", WIRES)
@pytest.mark.parametrize("served", WIRES)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_reply_reaches_the_client_in_its_own_protocol(served: str, client: str, stream: bool) -> None:
    if stream:
        translator = StreamTranslator(served, client, "asked-model", include_usage=True)
        raw = _served_stream(served)
        body = b"".join(translator.feed(raw[i:i + 37]) for i in range(0, len(raw), 37)) + translator.close()
    else:
        body = orjson.dumps(translate_reply(served, WRITERS[served](REPLY), client, "asked-model"))
    text, calls, input_tokens, output_tokens = _parse(client, body, stream)
    assert text == "Hello there"
    assert calls == [("get_weather", {"city": "Paris"})]
    assert (input_tokens, output_tokens) == (120, 30)


REQUESTS: dict[str, dict[str, Any]] = {
    "openai-chat": {
        "model": "gpt-4o", "max_tokens": 64, "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                                         {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
                                                    "parameters": {"type": "object",
                                                                   "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "auto",
    },
}


@pytest.mark.parametrize("via", WIRES)
def test_request_round_trip_keeps_the_conversation(via: str) -> None:
    original = read_chat("openai-chat", REQUESTS["openai-chat"], model="gpt-4o", stream=False)
    there = write_chat(via, original, "other-model", default_max_tokens=1024)
    back = read_chat(via, there, model="other-model", stream=False)
    assert back.system == original.system
    assert back.tools == original.tools
    assert back.tool_choice == original.tool_choice
    assert back.max_tokens == 64 and back.temperature == 0.2
    # Gemini has no call ids: calls and results keep their order and names, with ids of its own
    def shape(chat: Any) -> list[tuple[str, list[str]]]:
        return [(t.role, [type(p).__name__ for p in t.parts]) for t in chat.turns]

    assert shape(back) == shape(original)
    call = back.turns[1].parts[0]
    assert isinstance(call, ToolCall) and call.name == "get_weather"
    assert orjson.loads(call.arguments) == {"city": "Paris"}
    result = back.turns[2].parts[0]
    assert getattr(result, "call_id", None) == call.id
    assert "sunny" in getattr(result, "content", "")


@pytest.mark.parametrize(("wire", "body", "field"), [
    ("openai-chat", {"model": "m", "messages": [{"role": "user", "content": "x"}],
                     "response_format": {"type": "json_object"}}, "response_format"),
    ("openai-chat", {"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
     "messages[0].content[0]"),
    ("openai-responses", {"model": "m", "input": "x", "previous_response_id": "resp_1"}, "previous_response_id"),
    ("openai-responses", {"model": "m", "input": "x", "tools": [{"type": "web_search"}]}, "tools[0]"),
    ("anthropic-messages", {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
                            "thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking"),
    ("gemini", {"contents": [{"role": "user", "parts": [{"text": "x"}]}], "tools": [{"googleSearch": {}}]}, "tools[0]"),
])
def test_what_cannot_be_carried_is_refused_naming_the_field(wire: str, body: dict[str, Any], field: str) -> None:
    with pytest.raises(Untranslatable) as caught:
        read_chat(wire, body, model="m", stream=False)
    assert caught.value.field_path == field


def test_cached_and_cache_write_tokens_survive_anthropic_accounting() -> None:
    usage = ReplyUsage(input_tokens=1000, output_tokens=10, cached_tokens=600, cache_write_tokens=100)
    payload = anthropic_messages.write_reply(Reply("m1", "x", (Text("ok"),), "stop", usage), "x")
    assert payload["usage"]["input_tokens"] == 300  # Anthropic counts uncached input apart
    assert anthropic_messages.read_reply(payload).usage == usage
