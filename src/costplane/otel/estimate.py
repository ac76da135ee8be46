"""Tokens of a GenAI span that reports no usage, counted from its captured content.

A streamed call without `include_usage` (the official OpenAI instrumentation, OpenLLMetry) ends
with a model and no token counts. When the span captured the conversation — semconv
`gen_ai.system_instructions` / `gen_ai.input.messages` / `gen_ai.output.messages` (JSON text or
structured values; older releases put them on `gen_ai.content.*` span events, which the decoder
folds in), OpenLLMetry's `gen_ai.prompt.N.content` / `gen_ai.completion.N.content`, OpenInference's
`llm.input_messages.N.message.content` — its tokens are counted offline with the gateway's bound
(`gateway.tokens`: UTF-8 bytes plus a per-message overhead, an upper bound of any byte-level BPE).
That is the same rule as the gateway's and the SDK's when a provider returns no usage: charge what
may have been consumed, flagged `estimated`, never $0.

Output with no captured output content is bounded by `gen_ai.request.max_tokens` when the span
has it, else counted as 0 (the input alone is then charged, still `estimated`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from costplane.gateway.tokens import measure_openai_chat
from costplane.otel.aliases import CONTENT_INPUT, CONTENT_OUTPUT, INDEXED_CONTENT
from costplane.pricing.types import TokenUsage

__all__ = ["content_usage"]


def _items(value: Any) -> list[Any]:
    """Captured content as a list of messages: JSON text is parsed, plain text is one message."""
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("[", "{"):
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                return [value]
        else:
            return [value]
    if isinstance(value, list):
        return value
    return [value]


def _bound(messages: list[Any]) -> int:
    return measure_openai_chat({"messages": messages}).bound if messages else 0


def content_usage(attrs: Mapping[str, Any]) -> TokenUsage | None:
    """The token bound of the span's captured content; None when it captured none.
    `attrs` are normalised (canonical names)."""
    inputs: list[Any] = []
    outputs: list[Any] = []
    for name in CONTENT_INPUT:
        inputs += _items(attrs.get(name))
    for name in CONTENT_OUTPUT:
        outputs += _items(attrs.get(name))
    for key, value in attrs.items():
        match = INDEXED_CONTENT.match(key)
        if match is not None and value not in (None, ""):
            (inputs if (match.group(1) or match.group(2)) in ("prompt", "input") else outputs).append(value)
    if not inputs and not outputs:
        return None
    output_tokens = _bound(outputs)
    if not outputs:
        limit = attrs.get("gen_ai.request.max_tokens")
        output_tokens = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else 0
    return TokenUsage(input_tokens=_bound(inputs), output_tokens=output_tokens)
