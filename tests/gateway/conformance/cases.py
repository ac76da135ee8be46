"""One conformance case per registered protocol adapter: the suite's only per-protocol input.

A `ConformanceCase` says, in the protocol's own wire terms, how to ask for a plain answer, a
stream, a tool call, a cached prompt and reasoning, how to read the usage a client receives (in
genai-prices' convention, for the independent cost computation) and how to recognise the
protocol's error shape, a complete stream and its in-stream error event. A capability the
protocol does not have is None (the suite skips it and says why).

Adding a protocol: its adapter (one module and one line in `gateway.protocols.ADAPTER_MODULES`),
its simulator endpoint, and one entry in `CASES` below (plus its provider in `conftest.PROVIDERS`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["CASES", "ConformanceCase", "Wire"]


@dataclass(frozen=True)
class Wire:
    """One HTTP request as the protocol's client sends it (the key is added by `ConformanceCase.auth`)."""

    method: str
    path: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


Usage = dict[str, int]  # genai_prices.Usage keyword arguments


@dataclass(frozen=True)
class ConformanceCase:
    adapter: str  # ProtocolAdapter.name
    pricing_provider: str  # genai-prices provider id of the configured provider
    model: str  # what the client names (a model, a deployment, a Bedrock model id)
    priced_model: str  # the model the price is looked up for
    auth: Callable[[str], dict[str, str]]  # costplane key -> the headers carrying it
    plain: Callable[[str, str], Wire]  # (model, prompt) -> request
    usage: Callable[[Any], Usage]  # a plain response body (JSON) -> genai-prices usage
    error_message: Callable[[bytes, Mapping[str, str]], str | None]  # the message, if in the protocol's shape
    unknown_path: str  # a path under the protocol's prefix that no route serves
    stream: Callable[[str, str], Wire] | None = None
    stream_complete: Callable[[bytes], bool] = lambda raw: False
    stream_error_marker: bytes = b""  # in the in-stream error event the gateway sends on a cut stream
    tools: Callable[[str], Wire] | None = None
    tool_called: Callable[[Any], bool] = lambda payload: False
    cache: Callable[[str, str], Wire] | None = None  # (model, long prompt): a request whose prefix is cached
    reasoning_model: str | None = None  # (client name, priced name) of a model reporting reasoning tokens
    reasoning_priced: str | None = None


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _openai_error(raw: bytes, headers: Mapping[str, str]) -> str | None:
    body = orjson.loads(raw)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str) and isinstance(error.get("type"), str):
        return error["message"]
    return None


def _anthropic_error(raw: bytes, headers: Mapping[str, str]) -> str | None:
    body = orjson.loads(raw)
    if isinstance(body, dict) and body.get("type") == "error" and isinstance(body.get("error"), dict):
        return body["error"].get("message") if isinstance(body["error"].get("type"), str) else None
    return None


def _google_error(raw: bytes, headers: Mapping[str, str]) -> str | None:
    body = orjson.loads(raw)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), int) and isinstance(error.get("status"), str):
        return error.get("message")
    return None


def _bedrock_error(raw: bytes, headers: Mapping[str, str]) -> str | None:
    body = orjson.loads(raw)
    if isinstance(body, dict) and isinstance(body.get("message"), str) and headers.get("x-amzn-errortype"):
        return body["message"]
    return None


# -- OpenAI Chat Completions (and Azure) -----------------------------------------------------

_WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


Path = Callable[[str], str]  # model -> the path naming it (or not)


def _chat(path: Path) -> Callable[[str, str], Wire]:
    return lambda model, prompt: Wire("POST", path(model), {"model": model, "max_tokens": 60,
                                                            "messages": [{"role": "user", "content": prompt}]})


def _chat_stream(path: Path) -> Callable[[str, str], Wire]:
    return lambda model, prompt: Wire("POST", path(model), {"model": model, "max_tokens": 60, "stream": True,
                                                            "messages": [{"role": "user", "content": prompt}]})


def _chat_tools(path: Path) -> Callable[[str], Wire]:
    return lambda model: Wire("POST", path(model), {
        "model": model, "max_tokens": 60, "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": _WEATHER_SCHEMA}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}}})


def _chat_usage(payload: Any) -> Usage:
    usage = payload["usage"]
    return {"input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"],
            "cache_read_tokens": (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0}


def _chat_tool_called(payload: Any) -> bool:
    calls = payload["choices"][0]["message"].get("tool_calls") or []
    return bool(calls) and calls[0]["function"]["name"] == "get_weather"


def _chat_case(adapter: str, path: Path, model: str, priced: str, provider: str, unknown: str,
               auth: Callable[[str], dict[str, str]], reasoning: tuple[str, str]) -> ConformanceCase:
    return ConformanceCase(
        adapter=adapter, pricing_provider=provider, model=model, priced_model=priced, auth=auth,
        plain=_chat(path), usage=_chat_usage, error_message=_openai_error, unknown_path=unknown,
        stream=_chat_stream(path), stream_complete=lambda raw: b"data: [DONE]" in raw,
        stream_error_marker=b'"upstream_cut"', tools=_chat_tools(path), tool_called=_chat_tool_called,
        cache=_chat(path), reasoning_model=reasoning[0], reasoning_priced=reasoning[1])


# -- OpenAI Responses ------------------------------------------------------------------------

def _responses(stream: bool) -> Callable[[str, str], Wire]:
    return lambda model, prompt: Wire("POST", "/v1/responses", {"model": model, "input": prompt,
                                                                "max_output_tokens": 200, "stream": stream})


def _responses_usage(payload: Any) -> Usage:
    usage = payload["usage"]
    return {"input_tokens": usage["input_tokens"], "output_tokens": usage["output_tokens"],
            "cache_read_tokens": (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0}


# -- Anthropic Messages ----------------------------------------------------------------------

_ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}


def _messages(stream: bool) -> Callable[[str, str], Wire]:
    return lambda model, prompt: Wire("POST", "/v1/messages", {
        "model": model, "max_tokens": 60, "stream": stream, "messages": [{"role": "user", "content": prompt}]},
        _ANTHROPIC_HEADERS)


def _messages_cached(model: str, prompt: str) -> Wire:
    return Wire("POST", "/v1/messages", {
        "model": model, "max_tokens": 60, "messages": [{"role": "user", "content": "Summarise."}],
        "system": [{"type": "text", "text": prompt, "cache_control": {"type": "ephemeral"}}]}, _ANTHROPIC_HEADERS)


def _anthropic_usage(payload: Any) -> Usage:
    usage = payload["usage"]
    read, write = usage.get("cache_read_input_tokens") or 0, usage.get("cache_creation_input_tokens") or 0
    return {"input_tokens": usage["input_tokens"] + read + write, "output_tokens": usage["output_tokens"],
            "cache_read_tokens": read, "cache_write_tokens": write}


# -- Gemini ----------------------------------------------------------------------------------

def _gemini(method: str, query: str = "") -> Callable[[str, str], Wire]:
    return lambda model, prompt: Wire("POST", f"/v1beta/models/{model}:{method}{query}", {
        "contents": [{"role": "user", "parts": [{"text": prompt}]}], "generationConfig": {"maxOutputTokens": 200}})


def _gemini_usage(payload: Any) -> Usage:
    meta = payload["usageMetadata"]
    return {"input_tokens": meta.get("promptTokenCount", 0) + meta.get("toolUsePromptTokenCount", 0),
            "output_tokens": meta.get("candidatesTokenCount", 0) + meta.get("thoughtsTokenCount", 0),
            "cache_read_tokens": meta.get("cachedContentTokenCount", 0)}


def _gemini_tools(model: str) -> Wire:
    return Wire("POST", f"/v1beta/models/{model}:generateContent", {
        "contents": [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}],
        "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": _WEATHER_SCHEMA}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}}})


def _gemini_tool_called(payload: Any) -> bool:
    parts = payload["candidates"][0]["content"]["parts"]
    return any(p.get("functionCall", {}).get("name") == "get_weather" for p in parts)


# -- Bedrock Converse ------------------------------------------------------------------------

def _converse(operation: str) -> Callable[[str, str], Wire]:
    return lambda model, prompt: Wire("POST", f"/model/{model}/{operation}", {
        "messages": [{"role": "user", "content": [{"text": prompt}]}], "inferenceConfig": {"maxTokens": 60}})


def _converse_cached(model: str, prompt: str) -> Wire:
    return Wire("POST", f"/model/{model}/converse", {
        "system": [{"text": prompt}, {"cachePoint": {"type": "default"}}],
        "messages": [{"role": "user", "content": [{"text": "Summarise."}]}], "inferenceConfig": {"maxTokens": 60}})


def _converse_tools(model: str) -> Wire:
    return Wire("POST", f"/model/{model}/converse", {
        "messages": [{"role": "user", "content": [{"text": "Weather in Paris?"}]}],
        "inferenceConfig": {"maxTokens": 60},
        "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": _WEATHER_SCHEMA}}}],
                       "toolChoice": {"tool": {"name": "get_weather"}}}})


def _bedrock_usage(payload: Any) -> Usage:
    usage = payload["usage"]
    read, write = usage.get("cacheReadInputTokens") or 0, usage.get("cacheWriteInputTokens") or 0
    return {"input_tokens": usage["inputTokens"] + read + write, "output_tokens": usage["outputTokens"],
            "cache_read_tokens": read, "cache_write_tokens": write}


def _bedrock_tool_called(payload: Any) -> bool:
    content = payload["output"]["message"]["content"]
    return any(block.get("toolUse", {}).get("name") == "get_weather" for block in content)


CASES: Mapping[str, ConformanceCase] = {case.adapter: case for case in (
    _chat_case("openai-chat", lambda model: "/v1/chat/completions", "gpt-4o-mini", "gpt-4o-mini", "openai",
               "/v1/chat/complete", _bearer, ("o4-mini", "o4-mini")),
    ConformanceCase(
        adapter="openai-embeddings", pricing_provider="openai", model="text-embedding-3-small",
        priced_model="text-embedding-3-small", auth=_bearer,
        plain=lambda model, prompt: Wire("POST", "/v1/embeddings", {"model": model, "input": [prompt, "second"]}),
        usage=lambda payload: {"input_tokens": payload["usage"]["prompt_tokens"]},
        error_message=_openai_error, unknown_path="/v1/embedding"),
    ConformanceCase(
        adapter="openai-responses", pricing_provider="openai", model="gpt-4o-mini", priced_model="gpt-4o-mini",
        auth=_bearer, plain=_responses(False), usage=_responses_usage, error_message=_openai_error,
        unknown_path="/v1/response", stream=_responses(True),
        stream_complete=lambda raw: b"response.completed" in raw, stream_error_marker=b"event: error",
        tools=lambda model: Wire("POST", "/v1/responses", {
            "model": model, "input": "Weather in Paris?", "max_output_tokens": 200,
            "tools": [{"type": "function", "name": "get_weather", "parameters": _WEATHER_SCHEMA}],
            "tool_choice": {"type": "function", "name": "get_weather"}}),
        tool_called=lambda payload: any(item.get("type") == "function_call" and item.get("name") == "get_weather"
                                        for item in payload["output"]),
        cache=_responses(False), reasoning_model="o4-mini", reasoning_priced="o4-mini"),
    ConformanceCase(
        adapter="anthropic-messages", pricing_provider="anthropic", model="claude-haiku-4-5",
        priced_model="claude-haiku-4-5", auth=lambda key: {"x-api-key": key, **_ANTHROPIC_HEADERS},
        plain=_messages(False), usage=_anthropic_usage, error_message=_anthropic_error,
        unknown_path="/v1/messages/batch", stream=_messages(True),
        stream_complete=lambda raw: b"message_stop" in raw, stream_error_marker=b"event: error",
        tools=lambda model: Wire("POST", "/v1/messages", {
            "model": model, "max_tokens": 60, "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": [{"name": "get_weather", "input_schema": _WEATHER_SCHEMA}],
            "tool_choice": {"type": "tool", "name": "get_weather"}}, _ANTHROPIC_HEADERS),
        tool_called=lambda payload: payload["content"][0].get("type") == "tool_use"
        and payload["content"][0].get("name") == "get_weather",
        cache=_messages_cached),
    ConformanceCase(
        adapter="gemini", pricing_provider="google", model="gemini-2.0-flash", priced_model="gemini-2.0-flash",
        auth=lambda key: {"x-goog-api-key": key}, plain=_gemini("generateContent"), usage=_gemini_usage,
        error_message=_google_error, unknown_path="/v1beta/models/gemini-2.0-flash:generate",
        stream=_gemini("streamGenerateContent", "?alt=sse"),
        stream_complete=lambda raw: b'"finishReason"' in raw, stream_error_marker=b'"error"',
        tools=_gemini_tools, tool_called=_gemini_tool_called, cache=_gemini("generateContent"),
        reasoning_model="gemini-2.5-flash", reasoning_priced="gemini-2.5-flash"),
    ConformanceCase(
        adapter="bedrock", pricing_provider="aws", model="amazon.nova-lite-v1:0", priced_model="amazon.nova-lite-v1:0",
        auth=_bearer, plain=_converse("converse"), usage=_bedrock_usage, error_message=_bedrock_error,
        unknown_path="/model/amazon.nova-lite-v1:0/converse-all", stream=_converse("converse-stream"),
        stream_complete=lambda raw: b"messageStop" in raw and b"metadata" in raw,
        stream_error_marker=b"modelStreamErrorException", tools=_converse_tools, tool_called=_bedrock_tool_called,
        cache=_converse_cached),
    _chat_case("azure-openai", lambda model: f"/openai/deployments/{model}/chat/completions?api-version=2024-10-21",
               "prod-mini",
               "gpt-4o-mini", "azure", "/openai/deployments/prod-mini/completions",
               lambda key: {"api-key": key}, ("o4-mini-eu", "o4-mini")),
)}
