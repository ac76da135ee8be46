"""Usage from upstream responses, plain and streamed, in the TokenUsage convention.

Stream meters see every SSE event on its way to the client: they record usage,
count content deltas (what a cut stream is charged for), and may hold back the
usage chunk the gateway asked for on the client's behalf.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from costplane.pricing.readers import (
    anthropic_usage,
    openai_response_units,
    openai_usage,
    request_conditions,
    request_units,
    tier_conditions,
)
from costplane.pricing.types import TokenUsage

__all__ = ["AnthropicStreamMeter", "OpenAIStreamMeter", "anthropic_usage", "billed_facts", "openai_usage",
           "response_id", "served_usage"]

_MAX_ID = 256  # a provider's response id is short; anything longer is not kept


def response_id(payload: Any) -> str | None:
    """The provider's id of a response (OpenAI `chatcmpl-…` / `resp_…`, Anthropic `msg_…`), the
    key that finds the same call when the client's own telemetry reports it (`gen_ai.response.id`)."""
    value = payload.get("id") if isinstance(payload, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= _MAX_ID else None


def billed_facts(body: Mapping[str, Any]) -> dict[str, Any]:
    """What a request body says about its price before the call, as request parameters for the
    decision core (and CEL): the `service_tier`/`speed` it asks for and the fee-bearing units its
    built-in tools may incur (`billed_units`, e.g. ["web_searches"])."""
    facts: dict[str, Any] = dict(request_conditions(body))
    if body.get("service_tier") == "auto":
        facts["service_tier"] = "auto"  # not a price condition, but the bound must cover any tier
    units = request_units(body)
    if units:
        facts["billed_units"] = sorted(units)
    return facts


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def served_usage(usage: TokenUsage | None, payload: Any) -> TokenUsage | None:
    """`usage` with what only the whole response body says: the OpenAI tier actually served
    (`service_tier`) and the Responses API's tool-call items (web/file searches). What the usage
    object itself reports (Anthropic's `usage.service_tier`) wins."""
    if usage is None or not isinstance(payload, Mapping):
        return usage
    conditions = tier_conditions(payload.get("service_tier"))
    extra = openai_response_units(payload)
    if not conditions and not extra:
        return usage
    conditions.update(usage.conditions)
    units = dict(usage.units)
    for name, count in extra.items():
        units[name] = max(units.get(name, 0), count)
    return TokenUsage(usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens,
                      usage.reasoning_tokens, units=tuple(units.items()), conditions=tuple(conditions.items()))


class _SSEBuffer:
    def __init__(self) -> None:
        self._buffer = b""

    def events(self, chunk: bytes) -> list[bytes]:
        """Complete events (without their blank-line terminator) found so far."""
        self._buffer += chunk.replace(b"\r\n", b"\n")
        *complete, self._buffer = self._buffer.split(b"\n\n")
        return [event for event in complete if event.strip()]

    @property
    def pending(self) -> bytes:
        return self._buffer


def _data(event: bytes) -> bytes | None:
    lines = [line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines) if lines else None


class OpenAIStreamMeter:
    """Meters a chat.completions SSE stream. `hide_usage_chunk` drops the usage-only
    chunk when the gateway (not the client) asked for it."""

    def __init__(self, hide_usage_chunk: bool) -> None:
        self._sse = _SSEBuffer()
        self._hide = hide_usage_chunk
        self._usage: TokenUsage | None = None
        self.service_tier: str | None = None  # as the chunks report it (the tier served)
        self.response_id: str | None = None  # every chunk carries the completion's id
        self.deltas = 0
        self.done = False

    @property
    def usage(self) -> TokenUsage | None:
        """The stream's usage, with the served tier when the usage chunk itself did not carry it."""
        if self._usage is None or self.service_tier is None:
            return self._usage
        return served_usage(self._usage, {"service_tier": self.service_tier})

    def feed(self, chunk: bytes) -> list[tuple[bytes, bool]]:
        """(event bytes to forward, is_done_marker) for each complete event in chunk."""
        out: list[tuple[bytes, bool]] = []
        for event in self._sse.events(chunk):
            data = _data(event)
            if data is None:
                out.append((event + b"\n\n", False))
                continue
            if data.strip() == b"[DONE]":
                self.done = True
                out.append((event + b"\n\n", True))
                continue
            try:
                payload = orjson.loads(data)
            except orjson.JSONDecodeError:
                out.append((event + b"\n\n", False))
                continue
            usage = openai_usage(payload.get("usage")) if isinstance(payload, dict) else None
            if self.response_id is None:
                self.response_id = response_id(payload)
            if isinstance(payload, dict) and isinstance(payload.get("service_tier"), str):
                self.service_tier = payload["service_tier"]
            if usage is not None:
                self._usage = usage
            choices = payload.get("choices") if isinstance(payload, dict) else None
            if choices:
                for choice in choices:
                    delta = choice.get("delta") or {}
                    if delta.get("content") or delta.get("tool_calls") or delta.get("refusal"):
                        self.deltas += 1
            elif usage is not None and self._hide:
                continue
            out.append((event + b"\n\n", False))
        return out


class AnthropicStreamMeter:
    """Meters a /v1/messages SSE stream from message_start and message_delta usage."""

    def __init__(self) -> None:
        self._sse = _SSEBuffer()
        self._start: Mapping[str, Any] = {}
        self._delta: dict[str, Any] = {}  # cumulative usage fields of message_delta (server_tool_use, …)
        self._output = 0
        self.response_id: str | None = None  # message_start's message.id
        self.deltas = 0
        self.started = False
        self.done = False

    @property
    def usage(self) -> TokenUsage | None:
        if not self.started:
            return None
        merged = dict(self._start)
        merged.update((k, v) for k, v in self._delta.items() if v is not None and k != "output_tokens")
        merged["output_tokens"] = max(self._output, self.deltas if not self.done else 0)
        return anthropic_usage(merged)

    def feed(self, chunk: bytes) -> list[tuple[bytes, bool]]:
        out: list[tuple[bytes, bool]] = []
        for event in self._sse.events(chunk):
            data = _data(event)
            is_stop = False
            if data is not None:
                try:
                    payload = orjson.loads(data)
                except orjson.JSONDecodeError:
                    payload = None
                if isinstance(payload, dict):
                    kind = payload.get("type")
                    if kind == "message_start":
                        message = payload.get("message") or {}
                        self._start = dict(message.get("usage") or {})
                        self._output = _int(self._start.get("output_tokens"))
                        self.response_id = response_id(message)
                        self.started = True
                    elif kind == "message_delta":
                        usage = payload.get("usage") or {}
                        self._output = max(self._output, _int(usage.get("output_tokens")))
                        if isinstance(usage, dict):
                            self._delta.update(usage)
                        self.done = True
                    elif kind == "content_block_delta":
                        self.deltas += 1
                    elif kind == "message_stop":
                        is_stop = True
            out.append((event + b"\n\n", is_stop))
        return out
