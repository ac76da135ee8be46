"""Google Gemini `generateContent` <-> the neutral chat shape: requests, replies and stream chunks.

Gemini names no tool call ids on the wire of older models and addresses a result by the function's
name; calls read from Gemini get ids `call_<n>` in order, and results written to Gemini carry the
name remembered for their call id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from costplane.gateway.translate.common import TurnBuilder, parse_arguments, refuse_unknown
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

__all__ = ["GeminiStreamReader", "GeminiStreamWriter", "read_reply", "read_request", "write_reply", "write_request"]

_CARRIED = frozenset({"contents", "systemInstruction", "system_instruction", "tools", "toolConfig", "tool_config",
                      "generationConfig", "generation_config", "safetySettings", "safety_settings", "model"})
_GENERATION = frozenset({"maxOutputTokens", "temperature", "topP", "stopSequences", "candidateCount"})
_FINISH_IN: dict[str, FinishReason] = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
                                       "RECITATION": "content_filter", "BLOCKLIST": "content_filter",
                                       "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter"}
_FINISH_OUT = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "content_filter": "SAFETY"}


def _get(body: Mapping[str, Any], camel: str, snake: str) -> Any:
    return body.get(camel, body.get(snake))


def _choice(config: Any) -> str | None:
    calling = _get(config, "functionCallingConfig", "function_calling_config") if isinstance(config, Mapping) else None
    if not isinstance(calling, Mapping):
        return None
    mode = str(calling.get("mode") or "AUTO").upper()
    names = _get(calling, "allowedFunctionNames", "allowed_function_names") or []
    if mode == "ANY" and len(names) == 1:
        return f"tool:{names[0]}"
    if names and mode == "ANY":
        raise Untranslatable("toolConfig.functionCallingConfig.allowedFunctionNames",
                             "more than one allowed function cannot be routed across vendors")
    return {"AUTO": "auto", "ANY": "required", "NONE": "none"}.get(mode, "auto")


def _system_text(system: Any) -> str | None:
    if system is None:
        return None
    if isinstance(system, str):
        return system
    parts = system.get("parts") if isinstance(system, Mapping) else None
    if not isinstance(parts, list) or not all(isinstance(p, Mapping) and isinstance(p.get("text"), str)
                                              for p in parts):
        raise Untranslatable("systemInstruction", "only text system instructions can be routed across vendors")
    return "\n".join(p["text"] for p in parts)


def read_request(body: Mapping[str, Any], model: str, stream: bool) -> Chat:
    refuse_unknown(body, _CARRIED)
    generation = _get(body, "generationConfig", "generation_config") or {}
    snake = {"max_output_tokens": "maxOutputTokens", "top_p": "topP", "stop_sequences": "stopSequences",
             "candidate_count": "candidateCount"}
    generation = {snake.get(k, k): v for k, v in generation.items()}
    refuse_unknown(generation, _GENERATION, "generationConfig.")
    if generation.get("candidateCount") not in (None, 1):
        raise Untranslatable("generationConfig.candidateCount", "only one candidate can be routed across vendors")
    turns = TurnBuilder()
    pending: dict[str, list[str]] = {}  # function name -> ids of calls not yet answered
    count = 0
    for index, content in enumerate(body.get("contents") or ()):
        role: Role = "assistant" if content.get("role") == "model" else "user"
        since = turns.count
        for number, part in enumerate(content.get("parts") or ()):
            where = f"contents[{index}].parts[{number}]"
            inline = _get(part, "inlineData", "inline_data")
            stored = _get(part, "fileData", "file_data")
            call = _get(part, "functionCall", "function_call")
            answer = _get(part, "functionResponse", "function_response")
            if isinstance(part.get("text"), str):
                if part.get("thought"):
                    continue  # a thought summary is the model's, not part of the conversation to route
                if part["text"]:
                    turns.add(role, Text(part["text"]), f"{where}.text")
            elif isinstance(inline, Mapping):
                turns.add(role, Image(media_type=_get(inline, "mimeType", "mime_type"), data=inline.get("data")),
                          f"{where}.inlineData")
            elif isinstance(stored, Mapping):
                turns.add(role, Image(url=_get(stored, "fileUri", "file_uri"),
                                      media_type=_get(stored, "mimeType", "mime_type")), f"{where}.fileData")
            elif isinstance(call, Mapping):
                call_id = str(call.get("id") or f"call_{count}")
                count += 1
                pending.setdefault(str(call.get("name")), []).append(call_id)
                turns.add("assistant", ToolCall(call_id, str(call.get("name")),
                                                orjson.dumps(call.get("args") or {}).decode()), f"{where}.functionCall")
            elif isinstance(answer, Mapping):
                name = str(answer.get("name"))
                waiting = pending.get(name) or []
                call_id = str(answer.get("id") or (waiting.pop(0) if waiting else f"call_{name}"))
                response = answer.get("response")
                text = orjson.dumps(response).decode() if not isinstance(response, str) else response
                turns.result(call_id, text, where=f"{where}.functionResponse")
            else:
                raise Untranslatable(where, "this part cannot be routed across vendors")
        parts = content.get("parts") or ()
        if not parts or not all(isinstance(p, Mapping) and p.get("thought") for p in parts):
            turns.require_content(since, f"contents[{index}].parts")  # thought summaries alone are skipped
    tools = []
    for index, tool in enumerate(body.get("tools") or ()):
        declarations = _get(tool, "functionDeclarations", "function_declarations")
        if not isinstance(declarations, list) or len(tool) != 1:
            raise Untranslatable(f"tools[{index}]", "only function declarations can be routed across vendors")
        for declaration in declarations:
            schema = declaration.get("parameters") or declaration.get("parametersJsonSchema") or {
                "type": "object", "properties": {}}
            tools.append(Tool(str(declaration.get("name")), declaration.get("description"), dict(schema)))
    system = _get(body, "systemInstruction", "system_instruction")
    system_text = _system_text(system)
    return Chat(
        model=model, turns=turns.turns(), system=system_text or None, tools=tuple(tools),
        tool_choice=_choice(_get(body, "toolConfig", "tool_config")), max_tokens=generation.get("maxOutputTokens"),
        temperature=generation.get("temperature"), top_p=generation.get("topP"),
        stop=tuple(generation.get("stopSequences") or ()), stream=stream,
    )


def _part(part: Text | Image | ToolCall | ToolResult, where: str) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"text": part.text}
    if isinstance(part, Image):
        if part.data is not None:
            return {"inlineData": {"mimeType": part.media_type or "application/octet-stream", "data": part.data}}
        return {"fileData": {"mimeType": part.media_type or "image/*", "fileUri": part.url}}
    if isinstance(part, ToolCall):
        return {"functionCall": {"name": part.name, "args": parse_arguments(part.arguments, where)}}
    try:
        response = orjson.loads(part.content)
    except orjson.JSONDecodeError:
        response = None
    if not isinstance(response, dict):
        response = {"error" if part.is_error else "result": part.content}
    return {"functionResponse": {"name": part.name or part.call_id, "response": response}}


def write_request(chat: Chat) -> dict[str, Any]:
    contents = [{"role": "model" if turn.role == "assistant" else "user",
                 "parts": [_part(p, turn.source(j, f"turns[{i}]")) for j, p in enumerate(turn.parts)]}
                for i, turn in enumerate(chat.turns)]
    body: dict[str, Any] = {"contents": contents}
    if chat.system:
        body["systemInstruction"] = {"parts": [{"text": chat.system}]}
    if chat.tools:
        body["tools"] = [{"functionDeclarations": [{"name": t.name, "description": t.description or "",
                                                    "parameters": t.parameters} for t in chat.tools]}]
    if chat.tool_choice is not None:
        if chat.tool_choice.startswith("tool:"):
            calling: dict[str, Any] = {"mode": "ANY", "allowedFunctionNames": [chat.tool_choice[5:]]}
        else:
            calling = {"mode": {"auto": "AUTO", "required": "ANY", "none": "NONE"}.get(chat.tool_choice, "AUTO")}
        body["toolConfig"] = {"functionCallingConfig": calling}
    generation: dict[str, Any] = {}
    for name, value in (("maxOutputTokens", chat.max_tokens), ("temperature", chat.temperature),
                        ("topP", chat.top_p)):
        if value is not None:
            generation[name] = value
    if chat.stop:
        generation["stopSequences"] = list(chat.stop)
    if generation:
        body["generationConfig"] = generation
    return body


def _usage_in(meta: Mapping[str, Any] | None) -> ReplyUsage:
    meta = meta or {}
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    return ReplyUsage(
        input_tokens=int(meta.get("promptTokenCount") or 0) + int(meta.get("toolUsePromptTokenCount") or 0),
        output_tokens=int(meta.get("candidatesTokenCount") or 0) + thoughts,
        cached_tokens=int(meta.get("cachedContentTokenCount") or 0), reasoning_tokens=thoughts,
    )


def _usage_out(usage: ReplyUsage) -> dict[str, Any]:
    meta = {"promptTokenCount": usage.input_tokens,
            "candidatesTokenCount": usage.output_tokens - usage.reasoning_tokens,
            "totalTokenCount": usage.input_tokens + usage.output_tokens}
    if usage.cached_tokens:
        meta["cachedContentTokenCount"] = usage.cached_tokens
    if usage.reasoning_tokens:
        meta["thoughtsTokenCount"] = usage.reasoning_tokens
    return meta


def read_reply(payload: Mapping[str, Any]) -> Reply:
    candidate = (payload.get("candidates") or [{}])[0]
    parts: list[Text | ToolCall] = []
    for part in (candidate.get("content") or {}).get("parts") or ():
        if isinstance(part.get("text"), str) and not part.get("thought"):
            parts.append(Text(part["text"]))
        elif isinstance(part.get("functionCall"), Mapping):
            call = part["functionCall"]
            parts.append(ToolCall(str(call.get("id") or f"call_{len(parts)}"), str(call.get("name")),
                                  orjson.dumps(call.get("args") or {}).decode()))
    finish = _FINISH_IN.get(str(candidate.get("finishReason")), "stop")
    if finish == "stop" and any(isinstance(p, ToolCall) for p in parts):
        finish = "tool_calls"
    return Reply(str(payload.get("responseId") or ""), str(payload.get("modelVersion") or ""), tuple(parts), finish,
                 _usage_in(payload.get("usageMetadata")))


def write_reply(reply: Reply, model: str) -> dict[str, Any]:
    parts = [_part(p, "reply") for p in reply.parts] or [{"text": ""}]
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": _FINISH_OUT[reply.finish],
                            "index": 0}],
            "usageMetadata": _usage_out(reply.usage), "modelVersion": model, "responseId": reply.id}


class GeminiStreamReader:
    """`streamGenerateContent?alt=sse` chunks -> neutral stream events."""

    def __init__(self) -> None:
        self._sse = SseParser()
        self._started = False
        self._calls = 0
        self._usage: ReplyUsage | None = None
        self._finish: FinishReason | None = None

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for _, data in self._sse.feed(chunk):
            payload = json_of(data)
            if payload is None:
                continue
            if not self._started:
                self._started = True
                events.append(Start(str(payload.get("responseId") or ""), str(payload.get("modelVersion") or "")))
            candidate = (payload.get("candidates") or [{}])[0]
            for part in (candidate.get("content") or {}).get("parts") or ():
                if isinstance(part.get("text"), str) and part["text"] and not part.get("thought"):
                    events.append(TextDelta(part["text"]))
                elif isinstance(part.get("functionCall"), Mapping):
                    call = part["functionCall"]
                    index = self._calls
                    self._calls += 1
                    events.append(ToolStart(index, str(call.get("id") or f"call_{index}"), str(call.get("name"))))
                    events.append(ToolArgs(index, orjson.dumps(call.get("args") or {}).decode()))
            if payload.get("usageMetadata"):
                self._usage = _usage_in(payload["usageMetadata"])
            if candidate.get("finishReason"):
                finish = _FINISH_IN.get(str(candidate["finishReason"]), "stop")
                self._finish = "tool_calls" if finish == "stop" and self._calls else finish
        return events

    def close(self) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        if self._finish is not None:
            events.append(Finish(self._finish))
        if self._usage is not None:
            events.append(UsageUpdate(self._usage))
        return events


class GeminiStreamWriter:
    """Neutral stream events -> SSE chunks of `GenerateContentResponse`; a tool call is sent whole
    once its arguments are complete, and the last chunk carries finishReason and usageMetadata."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._id = ""
        self._call: tuple[str, list[str]] | None = None  # (name, argument fragments)
        self._finish: FinishReason = "stop"
        self._usage = ReplyUsage()

    def _chunk(self, parts: list[dict[str, Any]], final: bool = False) -> bytes:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        payload: dict[str, Any] = {"candidates": [candidate], "modelVersion": self._model, "responseId": self._id}
        if final:
            candidate["finishReason"] = _FINISH_OUT[self._finish]
            payload["usageMetadata"] = _usage_out(self._usage)
        return frame(payload)

    def _flush_call(self) -> bytes:
        if self._call is None:
            return b""
        name, fragments = self._call
        self._call = None
        return self._chunk([{"functionCall": {"name": name, "args": parse_arguments("".join(fragments), "stream")}}])

    def feed(self, event: StreamEvent) -> bytes:
        if isinstance(event, Start):
            self._id = event.id
            return b""
        if isinstance(event, TextDelta):
            return self._flush_call() + self._chunk([{"text": event.text}])
        if isinstance(event, ToolStart):
            out = self._flush_call()
            self._call = (event.name, [])
            return out
        if isinstance(event, ToolArgs):
            if self._call is not None:
                self._call[1].append(event.fragment)
            return b""
        if isinstance(event, Finish):
            self._finish = event.reason
            return self._flush_call()
        self._usage = event.usage
        return b""

    def close(self) -> bytes:
        return self._flush_call() + self._chunk([{"text": ""}], final=True)
