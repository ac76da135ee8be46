"""Token bounds of a request body, without a tokenizer download.

A byte-level BPE never produces more tokens than its input has UTF-8 bytes, so
the UTF-8 size of every string the model reads, plus a fixed overhead per
message, is a true upper bound of the prompt's tokens. That bound is what the
gateway reserves. `estimate` (≈ 4 bytes a token) is what policies see as
`request.input_tokens`, because people write thresholds in ordinary tokens.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["InputSize", "measure_anthropic", "measure_embeddings", "measure_openai_chat", "request_hash"]

PER_MESSAGE_BOUND = 8  # role markers and separators; real tokenizers use 3-4
PRIMING_BOUND = 8
#: An image part is charged by size, not bytes; this bounds one image (a 2048x2048
#: high-detail image is ~1,105 tokens at OpenAI, ~1,600 at Anthropic).
IMAGE_BOUND = 6_000
BYTES_PER_TOKEN_ESTIMATE = 4

_IGNORED_FOR_HASH = frozenset({"stream", "stream_options", "user", "metadata", "store"})
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class InputSize:
    bound: int  # provable upper bound of input tokens
    estimate: int  # typical count, for policies
    messages: int


def _text_bytes(value: Any) -> tuple[int, int]:
    """(utf-8 bytes of all text in value, number of image parts)."""
    if value is None:
        return 0, 0
    if isinstance(value, str):
        return len(value.encode("utf-8")), 0
    if isinstance(value, bool | int | float):
        return len(str(value)), 0
    if isinstance(value, list):
        total = images = 0
        for item in value:
            b, i = _text_bytes(item)
            total += b
            images += i
        return total, images
    if isinstance(value, Mapping):
        kind = value.get("type")
        if kind in ("image_url", "image", "input_image", "input_audio", "document"):
            return 0, 1
        total = images = 0
        for key, item in value.items():
            if key in ("cache_control", "type"):
                continue
            b, i = _text_bytes(item)
            total += b
            images += i
        return total, images
    return len(str(value).encode("utf-8")), 0


def _size(parts: int, bytes_: int, images: int) -> InputSize:
    overhead = PRIMING_BOUND + PER_MESSAGE_BOUND * parts
    bound = bytes_ + overhead + images * IMAGE_BOUND
    estimate = -(-bytes_ // BYTES_PER_TOKEN_ESTIMATE) + 3 * parts + 3 + images * 1_000
    return InputSize(bound=bound, estimate=min(estimate, bound), messages=parts)


def measure_openai_chat(body: Mapping[str, Any]) -> InputSize:
    messages = body.get("messages") or []
    bytes_, images = _text_bytes(messages)
    for extra in ("tools", "functions", "response_format"):
        if extra in body:
            bytes_ += len(orjson.dumps(body[extra]))
    return _size(len(messages), bytes_, images)


def measure_anthropic(body: Mapping[str, Any]) -> InputSize:
    messages = body.get("messages") or []
    bytes_, images = _text_bytes(messages)
    sys_bytes, sys_images = _text_bytes(body.get("system"))
    bytes_ += sys_bytes
    images += sys_images
    if "tools" in body:
        bytes_ += len(orjson.dumps(body["tools"]))
    return _size(len(messages) + (1 if body.get("system") else 0), bytes_, images)


def measure_embeddings(body: Mapping[str, Any]) -> InputSize:
    value = body.get("input")
    items = value if isinstance(value, list) else [value]
    if items and all(isinstance(i, int) for i in items):
        return InputSize(bound=len(items), estimate=len(items), messages=1)  # already token ids
    total = 0
    count = 0
    for item in items:
        if isinstance(item, list) and all(isinstance(i, int) for i in item):
            total += len(item)
            count += 1
            continue
        total += len(str(item).encode("utf-8"))
        count += 1
    estimate = -(-total // BYTES_PER_TOKEN_ESTIMATE)
    return InputSize(bound=total, estimate=estimate, messages=count)


def request_hash(body: Mapping[str, Any], *, normalise: bool) -> str:
    """A stable hash of what the model is asked. normalise=True collapses whitespace
    and case in strings (loop detection); False is exact (the response cache)."""
    relevant = {k: v for k, v in body.items() if k not in _IGNORED_FOR_HASH}
    if normalise:
        relevant = _normalised(relevant)
    return hashlib.sha256(orjson.dumps(relevant, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _normalised(value: Any) -> Any:
    if isinstance(value, str):
        return _WHITESPACE.sub(" ", value).strip().lower()
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _normalised(v) for k, v in value.items()}
    return value
