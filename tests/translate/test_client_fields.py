"""A request that cannot be carried to another vendor is refused naming the field of the client's own
request — also when the problem only shows while writing the served protocol's body — and an empty
message is refused before anything is written."""

from __future__ import annotations

from typing import Any

import pytest

from costplane.gateway.translate import WIRES, Untranslatable, read_chat, write_chat

BAD_ARGS = "{not json"


def _route(wire: str, body: dict[str, Any], served: str) -> dict[str, Any]:
    chat = read_chat(wire, body, model="m", stream=False)
    return write_chat(served, chat, "target", default_max_tokens=64)


def _field(wire: str, body: dict[str, Any], served: str) -> str:
    with pytest.raises(Untranslatable) as caught:
        _route(wire, body, served)
    return caught.value.field_path


@pytest.mark.parametrize("served", ["anthropic-messages", "gemini"])
def test_bad_tool_arguments_name_the_chat_clients_field(served: str) -> None:
    body = {"model": "gpt-4o", "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "ok", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "weather", "arguments": BAD_ARGS}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "a"},
        {"role": "tool", "tool_call_id": "c2", "content": "b"}]}
    assert _field("openai-chat", body, served) == "messages[1].tool_calls[1].function.arguments"


@pytest.mark.parametrize("served", ["anthropic-messages", "gemini"])
def test_bad_tool_arguments_name_the_responses_clients_field(served: str) -> None:
    body = {"model": "gpt-4o", "input": [
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": BAD_ARGS},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"}]}
    assert _field("openai-responses", body, served) == "input[1].arguments"


CLIENT_EMPTY = {
    "openai-chat": ({"model": "gpt-4o", "messages": [{"role": "user", "content": []}]}, "messages[0].content"),
    "openai-chat-text": ({"model": "gpt-4o", "messages": [{"role": "system", "content": "be brief"},
                                                           {"role": "user", "content": ""}]}, "messages[1].content"),
    "openai-chat-assistant": ({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"},
                                                                {"role": "assistant", "content": None},
                                                                {"role": "user", "content": "again"}]},
                              "messages[1].content"),
    "openai-responses": ({"model": "gpt-4o", "input": [{"role": "user", "content": []}]}, "input[0].content"),
    "anthropic-messages": ({"model": "claude-haiku-4-5", "max_tokens": 10,
                            "messages": [{"role": "user", "content": []}]}, "messages[0].content"),
    "gemini": ({"contents": [{"role": "user", "parts": []}]}, "contents[0].parts"),
}


def _wire(case: str) -> str:
    return next(w for w in WIRES if case.startswith(w))


@pytest.mark.parametrize(("case", "served"), [(case, served) for case in sorted(CLIENT_EMPTY) for served in WIRES
                                              if served != _wire(case)])
def test_an_empty_message_is_refused_naming_its_content(case: str, served: str) -> None:
    body, field = CLIENT_EMPTY[case]
    assert _field(_wire(case), body, served) == field


@pytest.mark.parametrize(("wire", "body", "field"), [
    ("openai-chat", {"model": "gpt-4o", "messages": [{"role": "system", "content": "only a system prompt"}]},
     "messages"),
    ("openai-responses", {"model": "gpt-4o", "instructions": "x", "input": []}, "input"),
])
def test_a_request_with_no_conversation_names_the_clients_list(wire: str, body: dict[str, Any], field: str) -> None:
    assert _field(wire, body, "anthropic-messages") == field


def test_gemini_thought_summaries_alone_are_not_an_empty_message() -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]},
                         {"role": "model", "parts": [{"text": "thinking", "thought": True}]},
                         {"role": "user", "parts": [{"text": "again"}]}]}
    written = _route("gemini", body, "openai-chat")
    assert [m["role"] for m in written["messages"]] == ["user"]  # the two user turns, merged
