"""Anthropic-compatible endpoints, driven by the official `anthropic` SDK over real HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import anthropic

from costplane.simulator.tokens import count_chat_prompt_tokens, count_tokens

MODEL = "claude-haiku-4-5"
FORCE = "x-simulator-output-tokens"


def test_plain_message_usage(claude: anthropic.Anthropic) -> None:
    messages: list[Any] = [{"role": "user", "content": "What is our burn rate?"}]
    reply = claude.messages.create(model=MODEL, max_tokens=1000, system="Be precise.", messages=messages)
    assert reply.type == "message" and reply.role == "assistant" and reply.model == MODEL
    text = reply.content[0].text  # type: ignore[union-attr]
    assert reply.usage.output_tokens == count_tokens(text)
    assert reply.stop_reason == "end_turn"
    expected_input = count_chat_prompt_tokens([{"role": "system", "content": "Be precise."}, *messages])
    assert reply.usage.input_tokens == expected_input
    assert reply.usage.cache_creation_input_tokens == 0 and reply.usage.cache_read_input_tokens == 0
    counted = claude.messages.count_tokens(model=MODEL, system="Be precise.", messages=messages)
    assert counted.input_tokens == expected_input


def test_max_tokens_caps_with_stop_reason_max_tokens(claude: anthropic.Anthropic) -> None:
    reply = claude.messages.create(model=MODEL, max_tokens=4, messages=[{"role": "user", "content": "hi"}],
                                   extra_headers={FORCE: "100"})
    assert reply.usage.output_tokens == 4 and reply.stop_reason == "max_tokens"
    reply = claude.messages.create(model=MODEL, max_tokens=400, messages=[{"role": "user", "content": "hi"}],
                                   extra_headers={FORCE: "100"})
    assert reply.usage.output_tokens == 100 and reply.stop_reason == "end_turn"


def test_stream_event_sequence_and_text(claude: anthropic.Anthropic) -> None:
    messages: list[Any] = [{"role": "user", "content": "stream " + uuid.uuid4().hex}]
    plain = claude.messages.create(model=MODEL, max_tokens=300, messages=messages)
    events = list(claude.messages.create(model=MODEL, max_tokens=300, messages=messages, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    deltas = [e for e in events if e.type == "content_block_delta"]
    text = "".join(e.delta.text for e in deltas)  # type: ignore[union-attr]
    assert text == plain.content[0].text  # type: ignore[union-attr]
    start = events[0]
    assert start.type == "message_start"
    assert start.message.usage.input_tokens == plain.usage.input_tokens
    delta = next(e for e in events if e.type == "message_delta")
    assert delta.type == "message_delta"
    assert delta.usage.output_tokens == plain.usage.output_tokens == len(deltas)
    assert delta.delta.stop_reason == "end_turn"


def test_stream_helper_final_message(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}],
                                extra_headers={FORCE: "25"}) as stream:
        final = stream.get_final_message()
    assert final.usage.output_tokens == 10 and final.stop_reason == "max_tokens"


def test_cache_control_writes_then_reads(claude: anthropic.Anthropic) -> None:
    manual = "Finance handbook " + uuid.uuid4().hex + " rule" * 300
    system: list[Any] = [{"type": "text", "text": manual, "cache_control": {"type": "ephemeral"}}]

    def ask(question: str, stream: bool = False) -> Any:
        messages: list[Any] = [{"role": "user", "content": question}]
        if stream:
            with claude.messages.stream(model=MODEL, max_tokens=50, system=system, messages=messages) as s:
                return s.get_final_message().usage
        return claude.messages.create(model=MODEL, max_tokens=50, system=system, messages=messages).usage

    prefix = 3 + count_tokens(manual)  # the system message's overhead + its text
    first = ask("first")
    assert (first.cache_creation_input_tokens, first.cache_read_input_tokens) == (prefix, 0)
    assert first.input_tokens == count_chat_prompt_tokens(
        [{"role": "system", "content": manual}, {"role": "user", "content": "first"}]) - prefix
    second = ask("second, streamed", stream=True)
    assert (second.cache_creation_input_tokens, second.cache_read_input_tokens) == (0, prefix)
    assert second.input_tokens == count_chat_prompt_tokens(
        [{"role": "system", "content": manual}, {"role": "user", "content": "second, streamed"}]) - prefix


def test_cache_breakpoint_in_messages_extends_the_prefix(claude: anthropic.Anthropic) -> None:
    tag = uuid.uuid4().hex
    block: dict[str, Any] = {"type": "text", "text": "context " + tag, "cache_control": {"type": "ephemeral"}}
    messages: list[Any] = [{"role": "user", "content": [block]}]
    first = claude.messages.create(model=MODEL, max_tokens=20, system="sys " + tag, messages=messages).usage
    assert first.cache_creation_input_tokens and not first.cache_read_input_tokens
    again = claude.messages.create(model=MODEL, max_tokens=20, system="sys " + tag, messages=messages).usage
    assert again.cache_read_input_tokens == first.cache_creation_input_tokens
    assert again.cache_creation_input_tokens == 0 and again.input_tokens == first.input_tokens


def test_deterministic_answers(claude: anthropic.Anthropic) -> None:
    def ask(system: str) -> str:
        reply = claude.messages.create(model=MODEL, max_tokens=300, system=system,
                                       messages=[{"role": "user", "content": "same"}])
        return reply.content[0].text  # type: ignore[union-attr]

    assert ask("a") == ask("a") != ask("b")


def test_models_list_in_anthropic_shape(claude: anthropic.Anthropic) -> None:
    ids = [m.id for m in claude.models.list()]
    assert ids and all(i.startswith("claude") for i in ids)


def test_custom_tools_are_used_until_a_tool_result_answers(claude: anthropic.Anthropic) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    tools: Any = [{"name": "get_weather", "input_schema": schema}]
    ask: Any = [{"role": "user", "content": "Weather in Paris?"}]
    used = claude.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=ask, tools=tools)
    assert used.stop_reason == "tool_use"
    block = used.content[0]
    assert block.type == "tool_use" and block.name == "get_weather" and isinstance(block.input["city"], str)
    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=ask, tools=tools) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "tool_use" and final.content[0].input == block.input  # type: ignore[union-attr]
    assert final.usage.output_tokens == used.usage.output_tokens
    answered = [*ask, {"role": "assistant", "content": [block.model_dump()]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "sunny"}]}]
    reply = claude.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=answered, tools=tools)
    assert reply.stop_reason in ("end_turn", "max_tokens") and reply.content[0].type == "text"
