"""Anthropic Messages <-> the neutral chat shape: requests, replies and stream events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from costplane.gateway.translate.common import TurnBuilder, parse_arguments, refuse_unknown, text_of
from costplane.gateway.translate.model import (
    Chat,
    Finish,
    FinishReason,
    Image,
    Reply,
    ReplyUsage,
    Role,
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

__all__ = ["MessagesStreamReader", "MessagesStreamWriter", "read_reply", "read_request", "write_reply",
           "write_request"]

_CARRIED = frozenset({"model", "messages", "system", "tools", "tool_choice", "max_tokens", "temperature", "top_p",
                      "stop_sequences", "stream", "metadata"})
_FINISH_IN: dict[str, FinishReason] = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                                       "tool_use": "tool_calls", "refusal": "content_filter", "pause_turn": "stop"}
_FINISH_OUT = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}


def _image(source: Any, where: str) -> Image:
    if not isinstance(source, Mapping):
        raise Untranslatable(where, "expected an image source object")
    if source.get("type") == "base64":
        return Image(media_type=source.get("media_type"), data=source.get("data"))
    if source.get("type") == "url":
        return Image(url=source.get("url"))
    raise Untranslatable(where, f"an image source of type {source.get('type')!r} cannot be routed across vendors")


def _choice(value: Any) -> str | None:
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "tool":
        return f"tool:{value.get('name')}"
    mapped = {"auto": "auto", "any": "required", "none": "none"}.get(str(kind))
    if mapped is None:
        raise Untranslatable("tool_choice", "expected {type: auto | any | tool | none}")
    return mapped


def read_request(body: Mapping[str, Any]) -> Chat:
    refuse_unknown(body, _CARRIED)
    turns = TurnBuilder()
    for index, message in enumerate(body.get("messages") or ()):
        where = f"messages[{index}]"
        role: Role = "assistant" if message.get("role") == "assistant" else "user"
        content = message.get("content")
        since = turns.count
        if isinstance(content, str) and content:
            turns.add(role, Text(content), f"{where}.content")
        for number, block in enumerate(content if isinstance(content, list) else ()):
            here = f"{where}.content[{number}]"
            kind = block.get("type")
            if kind == "text":
                turns.add(role, Text(block["text"]), here)
            elif kind == "image":
                turns.add(role, _image(block.get("source"), f"{here}.source"), f"{here}.source")
            elif kind == "tool_use":
                turns.add("assistant", ToolCall(str(block.get("id")), str(block.get("name")),
                                                orjson.dumps(block.get("input") or {}).decode()), f"{here}.input")
            elif kind == "tool_result":
                turns.result(str(block.get("tool_use_id")), text_of(block.get("content"), f"{here}.content"),
                             block.get("is_error") is True, f"{here}.content")
            else:
                raise Untranslatable(here, f"a {kind} block cannot be routed across vendors")
        turns.require_content(since, f"{where}.content")
    tools = []
    for index, tool in enumerate(body.get("tools") or ()):
        if tool.get("type") not in (None, "custom") or "input_schema" not in tool:
            raise Untranslatable(f"tools[{index}]", "server tools cannot be routed across vendors")
        tools.append(Tool(str(tool["name"]), tool.get("description"), dict(tool["input_schema"])))
    metadata = body.get("metadata") or {}
    return Chat(
        model=str(body.get("model")), turns=turns.turns(),
        system=text_of(body.get("system"), "system") or None, tools=tuple(tools),
        tool_choice=_choice(body.get("tool_choice")), max_tokens=body.get("max_tokens"),
        temperature=body.get("temperature"), top_p=body.get("top_p"),
        stop=tuple(body.get("stop_sequences") or ()), stream=body.get("stream") is True,
        user=metadata.get("user_id") if isinstance(metadata, Mapping) else None,
    )


def _block(part: Text | Image | ToolCall | ToolResult, where: str) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"type": "text", "text": part.text}
    if isinstance(part, Image):
        if part.url is not None:
            return {"type": "image", "source": {"type": "url", "url": part.url}}
        return {"type": "image", "source": {"type": "base64", "media_type": part.media_type, "data": part.data}}
    if isinstance(part, ToolCall):
        return {"type": "tool_use", "id": part.id, "name": part.name, "input": parse_arguments(part.arguments, where)}
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.call_id, "content": part.content}
    if part.is_error:
        block["is_error"] = True
    return block


def write_request(chat: Chat, model: str, default_max_tokens: int) -> dict[str, Any]:
    messages = [{"role": turn.role, "content": [_block(p, turn.source(j, f"turns[{i}]"))
                                                for j, p in enumerate(turn.parts)]}
                for i, turn in enumerate(chat.turns)]
    body: dict[str, Any] = {"model": model, "messages": messages,
                            "max_tokens": chat.max_tokens if chat.max_tokens is not None else default_max_tokens}
    if chat.system:
        body["system"] = chat.system
    if chat.tools:
        body["tools"] = [{"name": t.name, "description": t.description or "", "input_schema": t.parameters}
                         for t in chat.tools]
    if chat.tool_choice is not None:
        body["tool_choice"] = ({"type": "tool", "name": chat.tool_choice[5:]} if chat.tool_choice.startswith("tool:")
                               else {"type": {"required": "any"}.get(chat.tool_choice, chat.tool_choice)})
    for name, value in (("temperature", chat.temperature), ("top_p", chat.top_p)):
        if value is not None:
            body[name] = value
    if chat.stop:
        body["stop_sequences"] = list(chat.stop)
    if chat.user:
        body["metadata"] = {"user_id": chat.user}
    if chat.stream:
        body["stream"] = True
    return body


def _usage_in(usage: Mapping[str, Any] | None, base: ReplyUsage | None = None) -> ReplyUsage:
    usage = usage or {}
    base = base or ReplyUsage()
    cached = int(usage.get("cache_read_input_tokens") or 0) or base.cached_tokens
    written = int(usage.get("cache_creation_input_tokens") or 0) or base.cache_write_tokens
    fresh = usage.get("input_tokens")
    input_tokens = int(fresh) + cached + written if fresh is not None else base.input_tokens
    return ReplyUsage(input_tokens=input_tokens, output_tokens=int(usage.get("output_tokens") or 0),
                      cached_tokens=cached, cache_write_tokens=written)


def _usage_out(usage: ReplyUsage) -> dict[str, Any]:
    return {"input_tokens": max(0, usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens),
            "output_tokens": usage.output_tokens, "cache_read_input_tokens": usage.cached_tokens,
            "cache_creation_input_tokens": usage.cache_write_tokens}


def read_reply(payload: Mapping[str, Any]) -> Reply:
    parts: list[Text | ToolCall] = []
    for block in payload.get("content") or ():
        if block.get("type") == "text":
            parts.append(Text(str(block.get("text") or "")))
        elif block.get("type") == "tool_use":
            parts.append(ToolCall(str(block.get("id")), str(block.get("name")),
                                  orjson.dumps(block.get("input") or {}).decode()))
    return Reply(str(payload.get("id") or ""), str(payload.get("model") or ""), tuple(parts),
                 _FINISH_IN.get(str(payload.get("stop_reason")), "stop"), _usage_in(payload.get("usage")))


def write_reply(reply: Reply, model: str) -> dict[str, Any]:
    return {"id": reply.id, "type": "message", "role": "assistant", "model": model,
            "content": [_block(p, "reply") for p in reply.parts], "stop_reason": _FINISH_OUT[reply.finish],
            "stop_sequence": None, "usage": _usage_out(reply.usage)}


class MessagesStreamReader:
    """Anthropic SSE events -> neutral stream events (tool calls numbered among tool calls only)."""

    def __init__(self) -> None:
        self._sse = SseParser()
        self._usage = ReplyUsage()
        self._tools: dict[int, int] = {}  # content block index -> tool call index

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for _, data in self._sse.feed(chunk):
            payload = json_of(data)
            kind = payload.get("type") if payload else None
            if payload is None:
                continue
            if kind == "message_start":
                message = payload.get("message") or {}
                self._usage = _usage_in(message.get("usage"))
                events.append(Start(str(message.get("id") or ""), str(message.get("model") or "")))
            elif kind == "content_block_start":
                block = payload.get("content_block") or {}
                if block.get("type") == "tool_use":
                    index = self._tools[int(payload.get("index") or 0)] = len(self._tools)
                    events.append(ToolStart(index, str(block.get("id")), str(block.get("name"))))
                elif block.get("type") == "text" and block.get("text"):
                    events.append(TextDelta(str(block["text"])))
            elif kind == "content_block_delta":
                delta = payload.get("delta") or {}
                if delta.get("type") == "text_delta":
                    events.append(TextDelta(str(delta.get("text") or "")))
                elif delta.get("type") == "input_json_delta":
                    events.append(ToolArgs(self._tools.get(int(payload.get("index") or 0), 0),
                                           str(delta.get("partial_json") or "")))
            elif kind == "message_delta":
                self._usage = _usage_in(payload.get("usage"), self._usage)
                reason = (payload.get("delta") or {}).get("stop_reason")
                events.append(Finish(_FINISH_IN.get(str(reason), "stop")))
                events.append(UsageUpdate(self._usage))
        return events

    def close(self) -> list[StreamEvent]:
        return []


class MessagesStreamWriter:
    """Neutral stream events -> Anthropic SSE events; the final message_delta carries the usage."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._block: tuple[int, str] | None = None  # (content block index, text | tool_use)
        self._next = 0
        self._finish: FinishReason = "stop"
        self._usage = ReplyUsage()
        self._tool_blocks: dict[int, int] = {}

    def _close_block(self) -> bytes:
        if self._block is None:
            return b""
        index, _ = self._block
        self._block = None
        return frame({"type": "content_block_stop", "index": index}, "content_block_stop")

    def _open(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close_block()
        index = self._next
        self._next += 1
        self._block = (index, kind)
        return out + frame({"type": "content_block_start", "index": index, "content_block": block},
                           "content_block_start")

    def feed(self, event: StreamEvent) -> bytes:
        if isinstance(event, Start):
            message: dict[str, Any] = {
                "id": event.id or "msg_routed", "type": "message", "role": "assistant", "model": self._model,
                "content": [], "stop_reason": None, "stop_sequence": None, "usage": _usage_out(ReplyUsage())}
            return frame({"type": "message_start", "message": message}, "message_start")
        if isinstance(event, TextDelta):
            out = b"" if self._block is not None and self._block[1] == "text" else self._open(
                "text", {"type": "text", "text": ""})
            index = self._block[0] if self._block else 0
            return out + frame({"type": "content_block_delta", "index": index,
                                "delta": {"type": "text_delta", "text": event.text}}, "content_block_delta")
        if isinstance(event, ToolStart):
            out = self._open("tool_use", {"type": "tool_use", "id": event.id, "name": event.name, "input": {}})
            self._tool_blocks[event.index] = self._next - 1
            return out
        if isinstance(event, ToolArgs):
            index = self._tool_blocks.get(event.index, self._next - 1)
            return frame({"type": "content_block_delta", "index": index,
                          "delta": {"type": "input_json_delta", "partial_json": event.fragment}}, "content_block_delta")
        if isinstance(event, Finish):
            self._finish = event.reason
            return b""
        self._usage = event.usage
        return b""

    def close(self) -> bytes:
        out = self._close_block()
        out += frame({"type": "message_delta", "delta": {"stop_reason": _FINISH_OUT[self._finish],
                                                         "stop_sequence": None},
                      "usage": _usage_out(self._usage)}, "message_delta")
        return out + frame({"type": "message_stop"}, "message_stop")
