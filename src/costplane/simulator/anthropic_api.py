"""Anthropic-compatible `POST /v1/messages` (plain and SSE) and `POST /v1/messages/count_tokens`.

Usage follows Anthropic: `input_tokens` EXCLUDES `cache_creation_input_tokens` and
`cache_read_input_tokens`. The system prompt counts as one message in the token rule. With custom
tools (`input_schema`) and no `tool_result` in the last user turn (or `tool_choice` `any` / a named
tool), the model answers with a `tool_use` block (stop reason `tool_use`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

from costplane.simulator.answers import Answer, plan_answer, request_digest
from costplane.simulator.caching import AnthropicPromptUsage
from costplane.simulator.endpoint import Call, json_response
from costplane.simulator.errors import InvalidRequest
from costplane.simulator.faults import CutResponse
from costplane.simulator.openai_api import ToolCall, plan_tool_call
from costplane.simulator.sse import EventStreamResponse, sse_frame
from costplane.simulator.tokens import count_chat_prompt_tokens
from costplane.simulator.usage_shapes import USAGE_HEADER, deep_merge, profile_for, web_searches

__all__ = ["count_message_tokens", "messages", "prompt_messages"]


def prompt_messages(system: object, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages the token rule counts: the system prompt (when set) first, then `messages`."""
    if system is None or system == "" or system == []:
        return messages
    return [{"role": "system", "content": system}, *messages]


def _validate(body: Mapping[str, Any], *, need_max_tokens: bool = True) -> tuple[str, list[dict[str, Any]]]:
    model = body.get("model")
    if model is None:
        raise InvalidRequest("model: Field required")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Input should be a valid string")
    if need_max_tokens:
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            raise InvalidRequest("max_tokens: Field required")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            raise InvalidRequest("max_tokens: Input should be a valid integer")
        if max_tokens < 1:
            raise InvalidRequest("max_tokens: Input should be greater than or equal to 1")
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("messages: Field required")
    if not isinstance(messages, list):
        raise InvalidRequest("messages: Input should be a valid list")
    if not messages:
        raise InvalidRequest("messages: at least one message is required")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"messages.{index}: Input should be a valid dictionary")
        if message.get("role") not in ("user", "assistant"):
            raise InvalidRequest(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if content is None:
            raise InvalidRequest(f"messages.{index}.content: Field required")
        if not isinstance(content, str | list):
            raise InvalidRequest(f"messages.{index}.content: Input should be a valid list")
    system = body.get("system")
    if system is not None:
        if not isinstance(system, str | list):
            raise InvalidRequest("system: Input should be a valid list")
        if isinstance(system, list) and not all(
                isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
                for b in system):
            raise InvalidRequest("system: every block must be a text block with a 'text' string")
    return model, messages


def _usage(prompt: AnthropicPromptUsage, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt.input_tokens,
        "cache_creation_input_tokens": prompt.cache_creation_input_tokens,
        "cache_read_input_tokens": prompt.cache_read_input_tokens,
        "cache_creation": {"ephemeral_5m_input_tokens": prompt.cache_creation_input_tokens,
                           "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _tool_use(body: Mapping[str, Any], msgs: list[dict[str, Any]], digest: bytes) -> ToolCall | None:
    tools = [(str(t.get("name", "")), t.get("input_schema")) for t in body.get("tools") or ()
             if isinstance(t, dict) and "input_schema" in t]
    given = body.get("tool_choice")
    choice: Mapping[str, Any] = given if isinstance(given, dict) else {}
    kind = choice.get("type", "auto")
    if kind == "none":
        return None
    last = msgs[-1] if msgs else {}
    content = last.get("content")
    answered = last.get("role") == "user" and isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content)
    forced = str(choice.get("name")) if kind == "tool" else None
    return plan_tool_call(tools, forced, kind == "any", answered, digest)


def messages(call: Call) -> Response:
    body = call.body
    model, msgs = _validate(body)
    config = call.state.config
    system = body.get("system")
    digest = request_digest(model, system, msgs)
    answer = plan_answer(digest, model, max_tokens=body["max_tokens"],
                         forced_tokens=call.forced_output_tokens(), min_tokens=config.min_output_tokens,
                         max_default_tokens=config.max_output_tokens, reasoning=False)
    tool = _tool_use(body, msgs, digest)
    prompt = call.state.cache.anthropic_usage(model, system, msgs)
    profile = profile_for(config.usage_profiles, model, call.request.headers.get(USAGE_HEADER))
    extra: dict[str, Any] = {}
    if web_searches(body):
        extra["server_tool_use"] = {"web_search_requests": web_searches(body)}
    extra = deep_merge(extra, profile.get("usage") or {})
    stop_reason = "tool_use" if tool is not None else "max_tokens" if answer.truncated else "end_turn"
    message_id = f"msg_sim{call.seq:016d}"
    headers = {"request-id": call.request_id()}
    if body.get("stream"):
        return _stream(call, message_id, model, answer, prompt, stop_reason, headers, extra, tool)
    content: list[dict[str, Any]] = [{"type": "text", "text": answer.text}]
    if tool is not None:
        content = [{"type": "tool_use", "id": f"toolu_sim{call.seq:016d}", "name": tool.name,
                    "input": orjson.loads(tool.arguments)}]
    payload = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": deep_merge(_usage(prompt, tool.output_tokens if tool else answer.output_tokens), extra),
    }
    if call.cut:
        return CutResponse(orjson.dumps(payload))
    return json_response(payload, headers=headers)


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return sse_frame(orjson.dumps(payload), event=name)


def _stream(call: Call, message_id: str, model: str, answer: Answer, prompt: AnthropicPromptUsage,
            stop_reason: str, headers: dict[str, str], extra: dict[str, Any] | None = None,
            tool: ToolCall | None = None) -> Response:
    extra = extra or {}
    output_tokens = tool.output_tokens if tool is not None else answer.output_tokens
    start: dict[str, Any] = {"id": message_id, "type": "message", "role": "assistant", "model": model,
             "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": deep_merge(_usage(prompt, min(1, output_tokens)),
                                 {k: v for k, v in extra.items() if k != "server_tool_use"})}
    block: dict[str, Any] = {"type": "text", "text": ""}
    pieces: tuple[str, ...] | list[str] = answer.pieces
    if tool is not None:
        block = {"type": "tool_use", "id": f"toolu_sim{call.seq:016d}", "name": tool.name, "input": {}}
        pieces = tool.pieces
    frames = [
        _event("message_start", {"type": "message_start", "message": start}),
        _event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
        _event("ping", {"type": "ping"}),
    ]
    frames.extend(
        _event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "input_json_delta", "partial_json": piece}
                                       if tool is not None else {"type": "text_delta", "text": piece}})
        for piece in pieces)
    frames.append(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
    frames.append(_event("message_delta", {"type": "message_delta",
                                           "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                           "usage": {"output_tokens": output_tokens,
                                                     **({"server_tool_use": extra["server_tool_use"]}
                                                        if "server_tool_use" in extra else {})}}))
    frames.append(_event("message_stop", {"type": "message_stop"}))
    count = len(pieces)
    paced = [False] * 3 + [True] * count + [False] * 3
    cut_after = 3 + count // 2 if call.cut else None
    return EventStreamResponse(frames, paced, delay_s=call.state.config.stream_delay_ms / 1000.0,
                               cut_after=cut_after, headers=headers)


def count_message_tokens(call: Call) -> Response:
    """`{"input_tokens": N}`: every prompt token, as `messages` would count them (cache ignored)."""
    model, msgs = _validate(call.body, need_max_tokens=False)
    del model
    total = count_chat_prompt_tokens(prompt_messages(call.body.get("system"), msgs))
    return json_response({"input_tokens": total})
