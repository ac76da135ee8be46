"""OpenAI-compatible `POST /v1/chat/completions` (plain and SSE) and `GET /v1/models`.

With function tools and no tool result after the last user message (or `tool_choice` `required` /
a named function), the model calls the first (or named) function with arguments built from its
JSON schema (`plan_tool_call`, shared with the Anthropic endpoint); otherwise it answers text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response

from costplane.simulator.answers import Answer, plan_answer, request_digest
from costplane.simulator.endpoint import Call, json_response
from costplane.simulator.errors import InvalidRequest
from costplane.simulator.faults import CutResponse
from costplane.simulator.sse import EventStreamResponse, sse_frame
from costplane.simulator.tokens import count_chat_prompt_tokens, count_tokens
from costplane.simulator.usage_shapes import USAGE_HEADER, deep_merge, profile_for, served_tier

__all__ = ["CHAT_ROLES", "ToolCall", "chat_completions", "list_models", "plan_tool_call"]

#: Roles a chat message may have.
CHAT_ROLES: tuple[str, ...] = ("system", "assistant", "user", "function", "tool", "developer")
_FINGERPRINT = "fp_costplane_sim"
_DONE = b"data: [DONE]\n\n"


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidRequest(f"Invalid type for '{name}': expected an integer, but got "
                                 f"{type(value).__name__} instead.", param=name, code="invalid_type")
        if value < 1:
            raise InvalidRequest(f"Invalid '{name}': integer below minimum value. Expected a value >= 1, "
                                 f"but got {value} instead.", param=name, code="integer_below_min_value")
        return value
    return None


def _validate(body: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("you must provide a model parameter")
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("Missing required parameter: 'messages'.", param="messages",
                             code="missing_required_parameter")
    if not isinstance(messages, list):
        raise InvalidRequest("Invalid type for 'messages': expected an array.", param="messages",
                             code="invalid_type")
    if not messages:
        raise InvalidRequest("Invalid 'messages': empty array. Expected an array with minimum length 1, "
                             "but got an empty array instead.", param="messages", code="empty_array")
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"Invalid type for '{where}': expected an object.", param=where,
                                 code="invalid_type")
        role = message.get("role")
        if role is None:
            raise InvalidRequest(f"Missing required parameter: '{where}.role'.", param=f"{where}.role",
                                 code="missing_required_parameter")
        if role not in CHAT_ROLES:
            raise InvalidRequest(f"Invalid value: {role!r}. Supported values are: "
                                 + ", ".join(repr(r) for r in CHAT_ROLES) + ".",
                                 param=f"{where}.role", code="invalid_value")
        content = message.get("content")
        if content is None and role in ("system", "developer", "user", "tool"):
            raise InvalidRequest(f"Missing required parameter: '{where}.content'.",
                                 param=f"{where}.content", code="missing_required_parameter")
        if content is not None and not isinstance(content, str | list):
            raise InvalidRequest(f"Invalid type for '{where}.content': expected one of a string or "
                                 "array of objects.", param=f"{where}.content", code="invalid_type")
    if body.get("n", 1) not in (1, None):
        raise InvalidRequest("The simulator only supports n=1.", param="n", code="unsupported_value")
    if body.get("stream_options") is not None and not body.get("stream"):
        raise InvalidRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                             param="stream_options", code="invalid_value")
    return model, messages


_WORDS = ("paris", "ledger", "budget", "report", "alpha", "signal", "window", "plan")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the simulated model makes: its name, JSON arguments (streamed in pieces)."""

    name: str
    arguments: str
    pieces: tuple[str, ...]
    output_tokens: int


def plan_tool_call(tools: Sequence[tuple[str, Any]], forced: str | None, required: bool, answered: bool,
                   digest: bytes) -> ToolCall | None:
    """The call the model makes given its functions `(name, JSON schema)`: the `forced` one, else
    the first when `required` or when no tool result `answered` the last user turn."""
    if not tools:
        return None
    if forced is not None:
        name, schema = next((t for t in tools if t[0] == forced), tools[0])
    elif required or not answered:
        name, schema = tools[0]
    else:
        return None
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    arguments: dict[str, Any] = {}
    for index, (prop, spec) in enumerate((props or {}).items()):
        kind = spec.get("type") if isinstance(spec, Mapping) else None
        seed = digest[index % len(digest)]
        if kind in ("integer", "number"):
            arguments[prop] = seed % 10 + 1
        elif kind == "boolean":
            arguments[prop] = bool(seed % 2)
        else:
            arguments[prop] = _WORDS[seed % len(_WORDS)]
    text = orjson.dumps(arguments).decode()
    pieces = tuple(text[i:i + 8] for i in range(0, len(text), 8)) or ("",)
    return ToolCall(name, text, pieces, count_tokens(name) + count_tokens(text) + 2)


def _chat_tool_call(body: Mapping[str, Any], messages: list[dict[str, Any]], digest: bytes) -> ToolCall | None:
    tools = [(str(t["function"].get("name", "")), t["function"].get("parameters"))
             for t in body.get("tools") or () if isinstance(t, dict) and t.get("type") == "function"
             and isinstance(t.get("function"), dict)]
    choice = body.get("tool_choice", "auto")
    if choice == "none":
        return None
    forced = None
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        forced = str(choice["function"].get("name"))
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    answered = any(m.get("role") == "tool" for m in messages[last_user + 1:])
    return plan_tool_call(tools, forced, choice == "required", answered, digest)


def _usage(prompt: int, cached: int, answer: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": answer.output_tokens,
        "total_tokens": prompt + answer.output_tokens,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": answer.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completions(call: Call) -> Response:
    body = call.body
    model, messages = _validate(body)
    max_tokens = _max_tokens(body)
    state = call.state
    config = state.config
    digest = request_digest(model, messages)
    answer = plan_answer(digest, model, max_tokens=max_tokens,
                         forced_tokens=call.forced_output_tokens(), min_tokens=config.min_output_tokens,
                         max_default_tokens=config.max_output_tokens)
    tool = _chat_tool_call(body, messages, digest)
    prompt = count_chat_prompt_tokens(messages)
    cached = state.cache.openai_cached_tokens(model, messages, prompt)
    profile = profile_for(config.usage_profiles, model, call.request.headers.get(USAGE_HEADER))
    usage = deep_merge(_usage(prompt, cached, answer), profile.get("usage") or {})
    if tool is not None:
        usage["completion_tokens"] = tool.output_tokens + answer.reasoning_tokens
        usage["total_tokens"] = prompt + usage["completion_tokens"]
    tier = served_tier(body, profile)
    finish = "tool_calls" if tool is not None else "length" if answer.truncated else "stop"
    completion_id = f"chatcmpl-sim{call.seq:010d}"
    headers = {"x-request-id": call.request_id(), "openai-model": model}
    if body.get("stream"):
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return _stream(call, completion_id, model, answer, finish, usage if include_usage else None, headers, tier,
                       tool)
    message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None, "annotations": []}
    if tool is not None:
        message["content"] = None
        message["tool_calls"] = [{"id": f"call_sim{call.seq:010d}", "type": "function",
                                  "function": {"name": tool.name, "arguments": tool.arguments}}]
    payload = {
        "id": completion_id,
        "object": "chat.completion",
        "created": call.created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": finish,
        }],
        "usage": usage,
        "service_tier": tier,
        "system_fingerprint": _FINGERPRINT,
    }
    if call.cut:
        return CutResponse(orjson.dumps(payload))
    return json_response(payload, headers=headers)


def _stream(call: Call, completion_id: str, model: str, answer: Answer, finish: str,
            usage: dict[str, Any] | None, headers: dict[str, str], tier: str = "default",
            tool: ToolCall | None = None) -> Response:
    head = {"id": completion_id, "object": "chat.completion.chunk", "created": call.created, "model": model,
            "service_tier": tier, "system_fingerprint": _FINGERPRINT}
    if usage is not None:
        head["usage"] = None

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return sse_frame(orjson.dumps({**head, "choices": [choice]}))

    pieces: Sequence[str] = answer.pieces
    if tool is None:
        frames = [chunk({"role": "assistant", "content": "", "refusal": None})]
        frames.extend(chunk({"content": piece}) for piece in answer.pieces)
    else:
        pieces = tool.pieces
        frames = [chunk({"role": "assistant", "content": None, "tool_calls": [{
            "index": 0, "id": f"call_sim{call.seq:010d}", "type": "function",
            "function": {"name": tool.name, "arguments": ""}}]})]
        frames.extend(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}) for piece in pieces)
    frames.append(chunk({}, finish))
    if usage is not None:
        frames.append(sse_frame(orjson.dumps({**head, "choices": [], "usage": usage})))
    frames.append(_DONE)
    paced = [False] + [True] * len(pieces) + [False] * (len(frames) - 1 - len(pieces))
    cut_after = 1 + len(pieces) // 2 if call.cut else None
    return EventStreamResponse(frames, paced, delay_s=call.state.config.stream_delay_ms / 1000.0,
                               cut_after=cut_after, headers=headers)


def list_models(call: Call) -> Response:
    """OpenAI's model list, or Anthropic's (claude models) when the request has `anthropic-version`."""
    created = int(call.state.started_at)
    if "anthropic-version" in call.request.headers:
        models = [m for m in call.state.config.models if m.startswith("claude")]
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
                for m in models]
        return json_response({"data": data, "has_more": False,
                              "first_id": models[0] if models else None,
                              "last_id": models[-1] if models else None})
    return json_response({"object": "list", "data": [
        {"id": m, "object": "model", "created": created, "owned_by": "costplane-simulator"}
        for m in call.state.config.models if not m.startswith("claude")]})
