"""OpenAI Responses <-> the neutral chat shape: requests, replies and the typed event stream.

`previous_response_id` names a conversation stored at OpenAI, which another vendor cannot read: such a
request is not routed across vendors (nor are built-in tools or reasoning settings).
"""

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

__all__ = ["ResponsesStreamReader", "ResponsesStreamWriter", "read_reply", "read_request", "write_reply",
           "write_request"]

_CARRIED = frozenset({"model", "input", "instructions", "tools", "tool_choice", "max_output_tokens", "temperature",
                      "top_p", "stream", "user", "store", "metadata", "parallel_tool_calls", "text", "truncation",
                      "service_tier"})
_TEXT_TYPES = ("input_text", "output_text", "text")


def _choice(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping) and value.get("type") == "function":
        return f"tool:{value.get('name')}"
    raise Untranslatable("tool_choice", "only auto, none, required or a function can be routed across vendors")


def _message(turns: TurnBuilder, system: list[str], item: Mapping[str, Any], where: str) -> None:
    role = item.get("role")
    content = item.get("content")
    if role in ("system", "developer"):
        system.append(text_of(content, f"{where}.content", _TEXT_TYPES))
        return
    speaker: Role = "assistant" if role == "assistant" else "user"
    since = turns.count
    if isinstance(content, str) and content:
        turns.add(speaker, Text(content), f"{where}.content")
    for number, part in enumerate(content if isinstance(content, list) else ()):
        kind = part.get("type")
        if kind in _TEXT_TYPES:
            if part.get("text"):
                turns.add(speaker, Text(str(part.get("text"))), f"{where}.content[{number}]")
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            turns.add(speaker, image_from_url(part["image_url"]), f"{where}.content[{number}].image_url")
        elif kind != "refusal":
            raise Untranslatable(f"{where}.content[{number}]", f"a {kind} part cannot be routed across vendors")
    turns.require_content(since, f"{where}.content")


def read_request(body: Mapping[str, Any]) -> Chat:
    refuse_unknown(body, _CARRIED)
    text = body.get("text")
    if isinstance(text, Mapping) and (text.get("format") or {}).get("type", "text") != "text":
        raise Untranslatable("text.format", "structured output formats cannot be routed across vendors")
    turns = TurnBuilder()
    system = [str(body["instructions"])] if body.get("instructions") else []
    items = body.get("input")
    if isinstance(items, str):
        if not items:
            raise Untranslatable("input", "an empty input cannot be routed across vendors")
        turns.add("user", Text(items), "input")
        items = []
    for index, item in enumerate(items or ()):
        where = f"input[{index}]"
        kind = item.get("type", "message")
        if kind == "message":
            _message(turns, system, item, where)
        elif kind == "function_call":
            turns.add("assistant", ToolCall(str(item.get("call_id")), str(item.get("name")),
                                            str(item.get("arguments") or "")), f"{where}.arguments")
        elif kind == "function_call_output":
            output = item.get("output")
            turns.result(str(item.get("call_id")), output if isinstance(output, str)
                         else text_of(output, f"{where}.output", _TEXT_TYPES), where=f"{where}.output")
        elif kind != "reasoning":
            raise Untranslatable(where, f"an input item of type {kind} cannot be routed across vendors")
    tools = []
    for index, tool in enumerate(body.get("tools") or ()):
        if tool.get("type") != "function":
            raise Untranslatable(f"tools[{index}]", f"the built-in tool {tool.get('type')} cannot be routed "
                                                    "across vendors")
        tools.append(Tool(str(tool.get("name")), tool.get("description"),
                          dict(tool.get("parameters") or {"type": "object", "properties": {}})))
    return Chat(model=str(body.get("model")), turns=turns.turns(), system="\n\n".join(system) or None,
                tools=tuple(tools), tool_choice=_choice(body.get("tool_choice")),
                max_tokens=body.get("max_output_tokens"), temperature=body.get("temperature"),
                top_p=body.get("top_p"), stream=body.get("stream") is True, user=body.get("user"))


def write_request(chat: Chat, model: str) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for turn in chat.turns:
        content: list[dict[str, Any]] = []
        for part in turn.parts:
            if isinstance(part, Text):
                content.append({"type": "output_text" if turn.role == "assistant" else "input_text",
                                "text": part.text})
            elif isinstance(part, Image):
                content.append({"type": "input_image", "image_url": data_url(part)})
            elif isinstance(part, ToolCall):
                items.append({"type": "function_call", "call_id": part.id, "name": part.name,
                              "arguments": part.arguments})
            elif isinstance(part, ToolResult):
                items.append({"type": "function_call_output", "call_id": part.call_id, "output": part.content})
        if content:
            items.append({"type": "message", "role": turn.role, "content": content})
    body: dict[str, Any] = {"model": model, "input": items, "store": False}
    if chat.system:
        body["instructions"] = chat.system
    if chat.tools:
        body["tools"] = [{"type": "function", "name": t.name, "description": t.description or "",
                          "parameters": t.parameters, "strict": False} for t in chat.tools]
    if chat.tool_choice is not None:
        body["tool_choice"] = ({"type": "function", "name": chat.tool_choice[5:]}
                               if chat.tool_choice.startswith("tool:") else chat.tool_choice)
    for name, value in (("max_output_tokens", chat.max_tokens), ("temperature", chat.temperature),
                        ("top_p", chat.top_p), ("user", chat.user)):
        if value is not None:
            body[name] = value
    if chat.stop:
        raise Untranslatable("stop", "the Responses API has no stop sequences")
    if chat.stream:
        body["stream"] = True
    return body


def _usage_in(usage: Mapping[str, Any] | None) -> ReplyUsage:
    usage = usage or {}
    return ReplyUsage(
        input_tokens=int(usage.get("input_tokens") or 0), output_tokens=int(usage.get("output_tokens") or 0),
        cached_tokens=int((usage.get("input_tokens_details") or {}).get("cached_tokens") or 0),
        reasoning_tokens=int((usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0),
    )


def _usage_out(usage: ReplyUsage) -> dict[str, Any]:
    return {"input_tokens": usage.input_tokens, "input_tokens_details": {"cached_tokens": usage.cached_tokens},
            "output_tokens": usage.output_tokens,
            "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            "total_tokens": usage.input_tokens + usage.output_tokens}


def _finish(payload: Mapping[str, Any], calls: bool) -> FinishReason:
    if payload.get("status") == "incomplete":
        reason = (payload.get("incomplete_details") or {}).get("reason")
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if calls else "stop"


def read_reply(payload: Mapping[str, Any]) -> Reply:
    parts: list[Text | ToolCall] = []
    for item in payload.get("output") or ():
        if item.get("type") == "message":
            for part in item.get("content") or ():
                if part.get("type") == "output_text":
                    parts.append(Text(str(part.get("text") or "")))
        elif item.get("type") == "function_call":
            parts.append(ToolCall(str(item.get("call_id")), str(item.get("name")), str(item.get("arguments") or "")))
    calls = any(isinstance(p, ToolCall) for p in parts)
    return Reply(str(payload.get("id") or ""), str(payload.get("model") or ""), tuple(parts),
                 _finish(payload, calls), _usage_in(payload.get("usage")))


def _response(reply_id: str, model: str, output: list[dict[str, Any]], status: str, usage: ReplyUsage | None,
              created: int, finish: FinishReason = "stop") -> dict[str, Any]:
    incomplete = {"reason": "content_filter" if finish == "content_filter" else "max_output_tokens"}
    return {"id": reply_id, "object": "response", "created_at": created, "status": status, "model": model,
            "output": output, "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "incomplete_details": incomplete if status == "incomplete" else None, "error": None,
            "usage": _usage_out(usage) if usage is not None else None}


def _output(reply_id: str, parts: tuple[Text | ToolCall, ...]) -> list[dict[str, Any]]:
    output: list[dict[str, Any]] = []
    text = "".join(p.text for p in parts if isinstance(p, Text))
    if text:
        output.append({"type": "message", "id": f"msg_{reply_id}", "status": "completed", "role": "assistant",
                       "content": [{"type": "output_text", "text": text, "annotations": []}]})
    for part in parts:
        if isinstance(part, ToolCall):
            output.append({"type": "function_call", "id": f"fc_{part.id}", "call_id": part.id, "name": part.name,
                           "arguments": part.arguments, "status": "completed"})
    return output


def write_reply(reply: Reply, model: str) -> dict[str, Any]:
    rid = reply.id if reply.id.startswith("resp_") else f"resp_{reply.id}"
    status = "incomplete" if reply.finish in ("length", "content_filter") else "completed"
    return _response(rid, model, _output(rid, reply.parts), status, reply.usage, int(time.time()), reply.finish)


class ResponsesStreamReader:
    """The Responses typed event stream -> neutral stream events."""

    def __init__(self) -> None:
        self._sse = SseParser()
        self._calls: dict[int, int] = {}  # output index -> tool call index

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for name, data in self._sse.feed(chunk):
            payload = json_of(data)
            if payload is None:
                continue
            kind = payload.get("type") or name
            if kind == "response.created":
                response = payload.get("response") or {}
                events.append(Start(str(response.get("id") or ""), str(response.get("model") or "")))
            elif kind == "response.output_text.delta":
                events.append(TextDelta(str(payload.get("delta") or "")))
            elif kind == "response.output_item.added" and (payload.get("item") or {}).get("type") == "function_call":
                item = payload["item"]
                index = self._calls[int(payload.get("output_index") or 0)] = len(self._calls)
                events.append(ToolStart(index, str(item.get("call_id")), str(item.get("name"))))
                if item.get("arguments"):
                    events.append(ToolArgs(index, str(item["arguments"])))
            elif kind == "response.function_call_arguments.delta":
                events.append(ToolArgs(self._calls.get(int(payload.get("output_index") or 0), 0),
                                       str(payload.get("delta") or "")))
            elif kind in ("response.completed", "response.incomplete"):
                response = payload.get("response") or {}
                events.append(Finish(_finish(response, bool(self._calls))))
                events.append(UsageUpdate(_usage_in(response.get("usage"))))
        return events

    def close(self) -> list[StreamEvent]:
        return []


class ResponsesStreamWriter:
    """Neutral stream events -> the Responses typed event stream, `response.created` to `response.completed`."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._id = "resp_routed"
        self._created = int(time.time())
        self._sequence = 0
        self._items: list[dict[str, Any]] = []  # output items so far, the open one last
        self._open: str | None = None  # text | call
        self._text: list[str] = []
        self._finish: FinishReason = "stop"
        self._usage = ReplyUsage()

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return frame(payload, kind)

    def _close_item(self) -> bytes:
        if self._open is None:
            return b""
        index = len(self._items) - 1
        item = self._items[index]
        out = b""
        if self._open == "text":
            text = "".join(self._text)
            part = {"type": "output_text", "text": text, "annotations": []}
            out += self._event("response.output_text.done", item_id=item["id"], output_index=index, content_index=0,
                               text=text)
            out += self._event("response.content_part.done", item_id=item["id"], output_index=index,
                               content_index=0, part=part)
            item.update(status="completed", content=[part])
        else:
            out += self._event("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                               arguments=item["arguments"])
            item["status"] = "completed"
        self._open = None
        return out + self._event("response.output_item.done", output_index=index, item=item)

    def feed(self, event: StreamEvent) -> bytes:
        if isinstance(event, Start):
            self._id = event.id if event.id.startswith("resp_") else f"resp_{event.id or 'routed'}"
            response = _response(self._id, self._model, [], "in_progress", None, self._created)
            return (self._event("response.created", response=response)
                    + self._event("response.in_progress", response=response))
        if isinstance(event, TextDelta):
            out = b""
            if self._open != "text":
                out = self._close_item()
                item = {"type": "message", "id": f"msg_{self._id}_{len(self._items)}", "status": "in_progress",
                        "role": "assistant", "content": []}
                self._items.append(item)
                self._open, self._text = "text", []
                out += self._event("response.output_item.added", output_index=len(self._items) - 1, item=dict(item))
                out += self._event("response.content_part.added", item_id=item["id"],
                                   output_index=len(self._items) - 1, content_index=0,
                                   part={"type": "output_text", "text": "", "annotations": []})
            self._text.append(event.text)
            index = len(self._items) - 1
            return out + self._event("response.output_text.delta", item_id=self._items[index]["id"],
                                     output_index=index, content_index=0, delta=event.text)
        if isinstance(event, ToolStart):
            out = self._close_item()
            item = {"type": "function_call", "id": f"fc_{event.id}", "call_id": event.id, "name": event.name,
                    "arguments": "", "status": "in_progress"}
            self._items.append(item)
            self._open = "call"
            return out + self._event("response.output_item.added", output_index=len(self._items) - 1,
                                     item=dict(item))
        if isinstance(event, ToolArgs):
            if self._open != "call":
                return b""
            index = len(self._items) - 1
            self._items[index]["arguments"] += event.fragment
            return self._event("response.function_call_arguments.delta", item_id=self._items[index]["id"],
                               output_index=index, delta=event.fragment)
        if isinstance(event, Finish):
            self._finish = event.reason
            return b""
        self._usage = event.usage
        return b""

    def close(self) -> bytes:
        out = self._close_item()
        status = "incomplete" if self._finish in ("length", "content_filter") else "completed"
        response = _response(self._id, self._model, self._items, status, self._usage, self._created, self._finish)
        return out + self._event(f"response.{status}", response=response)
