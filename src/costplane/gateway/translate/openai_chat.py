"""OpenAI Chat Completions <-> the neutral chat shape: requests, replies and stream chunks."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from costplane.gateway.translate.common import TurnBuilder, data_url, image_from_url, refuse_unknown, text_of
from costplane.gateway.translate.model import (
    Chat,
    Finish,
    FinishReason,
    Image,
    Reply,
    ReplyUsage,
    Start,
    StreamEvent,
    Text,
    TextDelta,
    Tool,
    ToolArgs,
    ToolCall,
    ToolResult,
    ToolStart,
    Untranslatable,
    UsageUpdate,
)
from costplane.gateway.translate.sse import SseParser, frame, json_of

__all__ = ["ChatStreamReader", "ChatStreamWriter", "read_reply", "read_request", "write_reply", "write_request"]

_CARRIED = frozenset({"model", "messages", "tools", "tool_choice", "max_tokens", "max_completion_tokens",
                      "temperature", "top_p", "stop", "stream", "stream_options", "user", "n",
                      "parallel_tool_calls", "store", "metadata", "service_tier"})
_FINISH_IN: dict[str, FinishReason] = {"stop": "stop", "length": "length", "tool_calls": "tool_calls",
                                       "function_call": "tool_calls", "content_filter": "content_filter"}


def _choice(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("function"), Mapping):
        return f"tool:{value['function'].get('name')}"
    raise Untranslatable("tool_choice", "expected a string or {type: function, function: {name}}")


def read_request(body: Mapping[str, Any]) -> Chat:
    refuse_unknown(body, _CARRIED)
    if body.get("n") not in (None, 1):
        raise Untranslatable("n", "only one choice can be routed across vendors")
    turns = TurnBuilder()
    system: list[str] = []
    for index, message in enumerate(body.get("messages") or ()):
        where = f"messages[{index}]"
        role = message.get("role")
        content = message.get("content")
        since = turns.count
        if role in ("system", "developer"):
            system.append(text_of(content, f"{where}.content"))
            continue
        if role == "user":
            if isinstance(content, str) and content:
                turns.add("user", Text(content), f"{where}.content")
            for number, part in enumerate(content if isinstance(content, list) else ()):
                kind = part.get("type")
                if kind == "text":
                    turns.add("user", Text(part["text"]), f"{where}.content[{number}]")
                elif kind == "image_url":
                    url = part["image_url"]["url"] if isinstance(part.get("image_url"), Mapping) else None
                    if not isinstance(url, str):
                        raise Untranslatable(f"{where}.content[{number}].image_url", "expected {url}")
                    turns.add("user", image_from_url(url), f"{where}.content[{number}].image_url")
                else:
                    raise Untranslatable(f"{where}.content[{number}]", f"a {kind} part cannot be routed across vendors")
        elif role == "assistant":
            text = text_of(content, f"{where}.content", ("text", "refusal")) if content is not None else ""
            if text:
                turns.add("assistant", Text(text), f"{where}.content")
            for number, call in enumerate(message.get("tool_calls") or ()):
                function = call.get("function") or {}
                if call.get("type", "function") != "function":
                    raise Untranslatable(f"{where}.tool_calls[{number}]", "only function tool calls can be routed")
                turns.add("assistant", ToolCall(str(call.get("id")), str(function.get("name")),
                                                str(function.get("arguments") or "")),
                          f"{where}.tool_calls[{number}].function.arguments")
        elif role == "tool":
            turns.result(str(message.get("tool_call_id")), text_of(content, f"{where}.content"),
                         where=f"{where}.content")
        else:
            raise Untranslatable(f"{where}.role", f"role {role!r} cannot be routed across vendors")
        turns.require_content(since, f"{where}.content")
    tools = []
    for index, tool in enumerate(body.get("tools") or ()):
        function = tool.get("function") if tool.get("type") == "function" else None
        if not isinstance(function, Mapping):
            raise Untranslatable(f"tools[{index}]", "only function tools can be routed across vendors")
        tools.append(Tool(str(function["name"]), function.get("description"),
                          dict(function.get("parameters") or {"type": "object", "properties": {}})))
    stop = body.get("stop")
    return Chat(
        model=str(body.get("model")), turns=turns.turns(), system="\n\n".join(system) or None, tools=tuple(tools),
        tool_choice=_choice(body.get("tool_choice")),
        max_tokens=body.get("max_completion_tokens", body.get("max_tokens")),
        temperature=body.get("temperature"), top_p=body.get("top_p"),
        stop=(stop,) if isinstance(stop, str) else tuple(stop or ()), stream=body.get("stream") is True,
        user=body.get("user"),
    )


def write_request(chat: Chat, model: str) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if chat.system:
        messages.append({"role": "system", "content": chat.system})
    for turn in chat.turns:
        if turn.role == "assistant":
            text = "".join(p.text for p in turn.parts if isinstance(p, Text))
            calls = [{"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments}}
                     for p in turn.parts if isinstance(p, ToolCall)]
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                message["tool_calls"] = calls
            messages.append(message)
            continue
        content: list[dict[str, Any]] = []
        for part in turn.parts:
            if isinstance(part, ToolResult):
                messages.append({"role": "tool", "tool_call_id": part.call_id, "content": part.content})
            elif isinstance(part, Text):
                content.append({"type": "text", "text": part.text})
            elif isinstance(part, Image):
                content.append({"type": "image_url", "image_url": {"url": data_url(part)}})
        if content:
            messages.append({"role": "user", "content": content})
    body: dict[str, Any] = {"model": model, "messages": messages}
    if chat.tools:
        body["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description or "",
                                                           "parameters": t.parameters}} for t in chat.tools]
    if chat.tool_choice is not None:
        body["tool_choice"] = ({"type": "function", "function": {"name": chat.tool_choice[5:]}}
                               if chat.tool_choice.startswith("tool:") else chat.tool_choice)
    if chat.max_tokens is not None:
        body["max_completion_tokens"] = chat.max_tokens
    for name, value in (("temperature", chat.temperature), ("top_p", chat.top_p), ("user", chat.user)):
        if value is not None:
            body[name] = value
    if chat.stop:
        body["stop"] = list(chat.stop)
    if chat.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _usage_in(usage: Mapping[str, Any] | None) -> ReplyUsage:
    usage = usage or {}
    return ReplyUsage(
        input_tokens=int(usage.get("prompt_tokens") or 0), output_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0),
        reasoning_tokens=int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0),
    )


def _usage_out(usage: ReplyUsage) -> dict[str, Any]:
    return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens}}


def read_reply(payload: Mapping[str, Any]) -> Reply:
    choice = (payload.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    parts: list[Text | ToolCall] = []
    if isinstance(message.get("content"), str) and message["content"]:
        parts.append(Text(message["content"]))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        parts.append(ToolCall(str(call.get("id")), str(function.get("name")), str(function.get("arguments") or "")))
    return Reply(str(payload.get("id") or ""), str(payload.get("model") or ""), tuple(parts),
                 _FINISH_IN.get(str(choice.get("finish_reason")), "stop"), _usage_in(payload.get("usage")))


def write_reply(reply: Reply, model: str) -> dict[str, Any]:
    text = "".join(p.text for p in reply.parts if isinstance(p, Text))
    calls = [{"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments}}
             for p in reply.parts if isinstance(p, ToolCall)]
    message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return {"id": reply.id, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish}],
            "usage": _usage_out(reply.usage)}


class ChatStreamReader:
    """Chat Completions SSE chunks -> neutral stream events."""

    def __init__(self) -> None:
        self._sse = SseParser()
        self._started = False
        self._finish: FinishReason | None = None

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for _, data in self._sse.feed(chunk):
            payload = json_of(data)
            if payload is None:
                continue
            if not self._started:
                self._started = True
                events.append(Start(str(payload.get("id") or ""), str(payload.get("model") or "")))
            for choice in payload.get("choices") or ():
                delta = choice.get("delta") or {}
                if isinstance(delta.get("content"), str) and delta["content"]:
                    events.append(TextDelta(delta["content"]))
                for call in delta.get("tool_calls") or ():
                    function = call.get("function") or {}
                    index = int(call.get("index") or 0)
                    if call.get("id"):
                        events.append(ToolStart(index, str(call["id"]), str(function.get("name") or "")))
                    if function.get("arguments"):
                        events.append(ToolArgs(index, str(function["arguments"])))
                if choice.get("finish_reason"):
                    self._finish = _FINISH_IN.get(str(choice["finish_reason"]), "stop")
                    events.append(Finish(self._finish))
            if payload.get("usage"):
                events.append(UsageUpdate(_usage_in(payload["usage"])))
        return events

    def close(self) -> list[StreamEvent]:
        return []


class ChatStreamWriter:
    """Neutral stream events -> Chat Completions SSE chunks (usage chunk only when the client asked)."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self._model = model
        self._include_usage = include_usage
        self._id = "chatcmpl-routed"
        self._created = int(time.time())
        self._usage: ReplyUsage | None = None

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return frame({"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                      "model": self._model, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                         "finish_reason": finish}]})

    def feed(self, event: StreamEvent) -> bytes:
        if isinstance(event, Start):
            self._id = event.id or self._id
            return self._chunk({"role": "assistant", "content": ""})
        if isinstance(event, TextDelta):
            return self._chunk({"content": event.text})
        if isinstance(event, ToolStart):
            return self._chunk({"tool_calls": [{"index": event.index, "id": event.id, "type": "function",
                                                "function": {"name": event.name, "arguments": ""}}]})
        if isinstance(event, ToolArgs):
            return self._chunk({"tool_calls": [{"index": event.index, "function": {"arguments": event.fragment}}]})
        if isinstance(event, Finish):
            return self._chunk({}, event.reason)
        self._usage = event.usage
        return b""

    def close(self) -> bytes:
        tail = b""
        if self._include_usage and self._usage is not None:
            tail = frame({"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                          "model": self._model, "choices": [], "usage": _usage_out(self._usage)})
        return tail + b"data: [DONE]\n\n"
