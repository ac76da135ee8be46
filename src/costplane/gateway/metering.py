"""Usage from upstream responses, plain and streamed, in the TokenUsage convention.

Stream meters see every SSE event on its way to the client: they record usage,
count content deltas (what a cut stream is charged for), and may hold back the
usage chunk the gateway asked for on the client's behalf.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from costplane.pricing.types import TokenUsage

__all__ = ["AnthropicStreamMeter", "OpenAIStreamMeter", "anthropic_usage", "openai_usage"]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def openai_usage(usage: Mapping[str, Any] | None) -> TokenUsage | None:
    """OpenAI usage: prompt_tokens include cached tokens; completion_tokens include reasoning."""
    if not isinstance(usage, Mapping):
        return None
    prompt = _int(usage.get("prompt_tokens"))
    completion = _int(usage.get("completion_tokens"))
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    cached = min(_int(prompt_details.get("cached_tokens")), prompt) if isinstance(prompt_details, Mapping) else 0
    reasoning = (min(_int(completion_details.get("reasoning_tokens")), completion)
                 if isinstance(completion_details, Mapping) else 0)
    return TokenUsage(input_tokens=prompt, output_tokens=completion, cache_read_tokens=cached,
                      reasoning_tokens=reasoning)


def anthropic_usage(usage: Mapping[str, Any] | None) -> TokenUsage | None:
    """Anthropic usage: input_tokens EXCLUDE cache reads and writes, so add them back."""
    if not isinstance(usage, Mapping):
        return None
    read = _int(usage.get("cache_read_input_tokens"))
    write = _int(usage.get("cache_creation_input_tokens"))
    return TokenUsage(input_tokens=_int(usage.get("input_tokens")) + read + write,
                      output_tokens=_int(usage.get("output_tokens")), cache_read_tokens=read,
                      cache_write_tokens=write)


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
        self.usage: TokenUsage | None = None
        self.deltas = 0
        self.done = False

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
            if usage is not None:
                self.usage = usage
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
        self._output = 0
        self.deltas = 0
        self.started = False
        self.done = False

    @property
    def usage(self) -> TokenUsage | None:
        if not self.started:
            return None
        merged = dict(self._start)
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
                        self.started = True
                    elif kind == "message_delta":
                        usage = payload.get("usage") or {}
                        self._output = max(self._output, _int(usage.get("output_tokens")))
                        self.done = True
                    elif kind == "content_block_delta":
                        self.deltas += 1
                    elif kind == "message_stop":
                        is_stop = True
            out.append((event + b"\n\n", is_stop))
        return out
