"""Deterministic token counting, close enough to a byte-level BPE to look realistic.

A text is split by one regular expression into pieces; every piece is one token:

* a contraction suffix (`'s`, `'re`, ...);
* up to 10 ASCII letters, optionally preceded by one space (longer words take several tokens);
* up to 3 digits, optionally preceded by one space;
* up to 4 ASCII punctuation characters, optionally preceded by one space;
* a run of whitespace (the last space before a word joins that word instead);
* any other single character (CJK, emoji, accented letters, control characters).

Every token holds at least one character, hence at least one UTF-8 byte: a text never has more
tokens than UTF-8 bytes. A chat prompt costs, in OpenAI's convention, `PER_MESSAGE_OVERHEAD` tokens
per message (role and framing) plus the tokens of its text (content text parts and `name`), plus
`REPLY_PRIMING` tokens once. So for any prompt::

    prompt_tokens <= utf8_bytes(all message text) + PER_MESSAGE_OVERHEAD * messages + REPLY_PRIMING
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = [
    "PER_MESSAGE_OVERHEAD",
    "REPLY_PRIMING",
    "content_texts",
    "count_chat_prompt_tokens",
    "count_content_tokens",
    "count_tokens",
    "message_texts",
    "tokenize",
]

#: Tokens every message costs besides its text (role and framing), as OpenAI counts them.
PER_MESSAGE_OVERHEAD = 3
#: Tokens every prompt costs once (the primed assistant reply), as OpenAI counts them.
REPLY_PRIMING = 3

_TOKEN_RE = re.compile(
    r"'(?:ll|ve|re|[sdmt])(?![A-Za-z])"
    r"| ?[A-Za-z]{1,10}"
    r"| ?[0-9]{1,3}"
    r"| ?[!-/:-@\[-`{-~]{1,4}"
    r"|\s+(?!\S)"
    r"|\s+"
    r"|.",
    re.DOTALL,
)


def tokenize(text: str) -> list[str]:
    """The tokens of `text`; joining them gives `text` back."""
    return _TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    """Number of tokens of `text` (0 for the empty string)."""
    if not text:
        return 0
    return len(_TOKEN_RE.findall(text))


def content_texts(content: object) -> Iterator[str]:
    """The text pieces of a message `content`, OpenAI or Anthropic shaped.

    A string is its own text; a list yields the `text` of its parts (OpenAI `text`/`refusal`
    parts, Anthropic `text` blocks and the content of `tool_result` blocks). Images, audio and
    other parts carry no text and count nothing.
    """
    if isinstance(content, str):
        yield content
        return
    if not isinstance(content, list):
        return
    for part in content:
        if isinstance(part, str):
            yield part
        elif isinstance(part, Mapping):
            text = part.get("text")
            if isinstance(text, str):
                yield text
            refusal = part.get("refusal")
            if isinstance(refusal, str):
                yield refusal
            if part.get("type") == "tool_result":
                yield from content_texts(part.get("content"))


def message_texts(message: Mapping[str, Any]) -> Iterator[str]:
    """The texts of one chat message that count: its content and its `name`."""
    yield from content_texts(message.get("content"))
    name = message.get("name")
    if isinstance(name, str):
        yield name


def count_content_tokens(content: object) -> int:
    """Tokens of the text pieces of a message content (no per-message overhead)."""
    return sum(count_tokens(text) for text in content_texts(content))


def count_chat_prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """Prompt tokens of a chat request: per-message overhead + text tokens + reply priming."""
    total = REPLY_PRIMING
    for message in messages:
        total += PER_MESSAGE_OVERHEAD
        for text in message_texts(message):
            total += count_tokens(text)
    return total
