"""Simulated prompt caching: which prompt prefixes this server has seen before.

OpenAI-style (automatic): a prompt of at least `min_tokens` tokens is cut at every
`min_tokens + k * increment` token boundary; the longest boundary prefix seen before is the
cached part (`cached_tokens`). Anthropic-style (explicit): every content block carrying
`cache_control` ends a cacheable prefix; the longest one seen before is read from the cache
(`cache_read_input_tokens`), the rest up to the last breakpoint is written
(`cache_creation_input_tokens`). Prefixes are keyed by model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from costplane.simulator.errors import InvalidRequest
from costplane.simulator.tokens import (
    PER_MESSAGE_OVERHEAD,
    REPLY_PRIMING,
    content_texts,
    count_tokens,
    message_texts,
    tokenize,
)

__all__ = ["MAX_CACHE_BREAKPOINTS", "AnthropicPromptUsage", "PrefixCache"]

#: Anthropic accepts at most this many `cache_control` blocks per request.
MAX_CACHE_BREAKPOINTS = 4


@dataclass(frozen=True, slots=True)
class AnthropicPromptUsage:
    """Input side of an Anthropic usage object; `input_tokens` excludes the cache tokens."""

    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


class PrefixCache:
    """A bounded set of prefix digests (oldest forgotten first) and the two caching rules."""

    def __init__(self, capacity: int, *, min_tokens: int = 1024, increment: int = 128,
                 anthropic_min_tokens: int = 0) -> None:
        self._capacity = capacity
        self._min_tokens = min_tokens
        self._increment = increment
        self._anthropic_min_tokens = anthropic_min_tokens
        self._seen: dict[bytes, None] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def clear(self) -> None:
        self._seen.clear()

    def _remember(self, digest: bytes) -> None:
        if self._capacity <= 0 or digest in self._seen:
            return
        self._seen[digest] = None
        if len(self._seen) > self._capacity:
            del self._seen[next(iter(self._seen))]

    def openai_cached_tokens(self, model: str, messages: Sequence[Mapping[str, Any]],
                             prompt_tokens: int) -> int:
        """Cached tokens of a chat prompt of `prompt_tokens` tokens; remembers its prefixes."""
        if prompt_tokens < self._min_tokens or self._min_tokens <= 0:
            return 0
        items: list[str] = []
        for message in messages:
            marker = "\x00" + str(message.get("role")) + "\x00"
            items.extend((marker,) * PER_MESSAGE_OVERHEAD)
            for text in message_texts(message):
                items.extend(tokenize(text))
        hasher = hashlib.blake2b(("openai\x00" + model).encode(), digest_size=16)
        cached = 0
        start = 0
        boundary = self._min_tokens
        while boundary <= len(items):
            hasher.update("".join(items[start:boundary]).encode())
            digest = hasher.copy().digest()
            if digest in self._seen:
                cached = boundary
            else:
                self._remember(digest)
            start = boundary
            boundary += self._increment
        return cached

    def anthropic_usage(self, model: str, system: object,
                        messages: Sequence[Mapping[str, Any]]) -> AnthropicPromptUsage:
        """Input usage of a Messages request; remembers its `cache_control` prefixes."""
        hasher = hashlib.blake2b(("anthropic\x00" + model).encode(), digest_size=16)
        total = 0
        breakpoints: list[tuple[int, bytes]] = []
        framed: list[tuple[str, object]] = []
        if system is not None and system != "" and system != []:
            framed.append(("system", system))
        framed.extend((str(m.get("role")), m.get("content")) for m in messages)
        for role, content in framed:
            total += PER_MESSAGE_OVERHEAD
            hasher.update(("\x00" + role + "\x00").encode())
            blocks = content if isinstance(content, list) else [content]
            for block in blocks:
                for text in content_texts([block]):
                    total += count_tokens(text)
                    hasher.update(text.encode())
                hasher.update(b"\x01")
                if isinstance(block, Mapping) and block.get("cache_control"):
                    breakpoints.append((total, hasher.copy().digest()))
        if len(breakpoints) > MAX_CACHE_BREAKPOINTS:
            raise InvalidRequest(f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be "
                                 f"provided. Found {len(breakpoints)}.")
        total += REPLY_PRIMING
        eligible = [(tokens, digest) for tokens, digest in breakpoints
                    if tokens >= self._anthropic_min_tokens and tokens > 0]
        read = 0
        for tokens, digest in eligible:
            if digest in self._seen:
                read = max(read, tokens)
        write = 0
        if eligible and eligible[-1][0] > read:
            write = eligible[-1][0] - read
        for _, digest in eligible:
            self._remember(digest)
        return AnthropicPromptUsage(total - read - write, write, read)
