"""Deterministic answers: the reply to a request is a pure function of a digest of it.

The visible text is made of pieces that are each exactly one token for `tokens.count_tokens`
(a capitalised or ` `-prefixed word of at most 10 letters, `,` or `.`; never two punctuation
pieces in a row), so the text of an answer of N visible tokens counts exactly N tokens, and
streaming the pieces one by one gives the same text as the plain answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson

__all__ = [
    "MAX_FORCED_OUTPUT_TOKENS",
    "REASONING_PREFIXES",
    "Answer",
    "is_reasoning_model",
    "plan_answer",
    "request_digest",
]

#: Model-name prefixes of reasoning models (they report `reasoning_tokens`).
REASONING_PREFIXES: tuple[str, ...] = ("o1", "o3", "o4", "gpt-5")
#: Upper bound of `x-simulator-output-tokens`.
MAX_FORCED_OUTPUT_TOKENS = 1_000_000

_WORD_TEXT = """
    the a of and to in is that for it as with on be this by are from at or an which can not
    have more will model token cost budget team each when other what there some into time
    these value first data only also new way may use then than such after most over system
    request answer price usage window policy route call plan spend limit run result context
    simple clear small large early later every another should could would because while
    before between through during without within under again further once here where both
    few many much own same very just still even well back good great long little right
    high different public private general local common whole usual careful quick steady
    ledger invoice gateway provider account control report metric signal record batch
    project product service process method measure average number amount total share part
"""
_WORDS: tuple[str, ...] = tuple(_WORD_TEXT.split())
_CAPITALISED: tuple[str, ...] = tuple(word.capitalize() for word in _WORDS)
_SPACED: tuple[str, ...] = tuple(" " + word for word in _WORDS)
_SPACED_CAPITALISED: tuple[str, ...] = tuple(" " + word for word in _CAPITALISED)
_PUNCTUATION = frozenset({",", "."})


def request_digest(model: str, *parts: object) -> bytes:
    """A stable 32-byte digest of the model and the JSON-able parts of a request."""
    payload = orjson.dumps([model, *parts], option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(payload, digest_size=32).digest()


def is_reasoning_model(model: str) -> bool:
    """True for OpenAI reasoning models (`o1…`, `o3…`, `o4…`, `gpt-5…`), provider prefix ignored."""
    name = model.rsplit("/", 1)[-1].lower()
    return name.startswith(REASONING_PREFIXES)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the simulated model replies.

    output_tokens counts every generated token, reasoning included; `pieces` are the visible
    tokens (output_tokens - reasoning_tokens of them). `truncated` means the answer was cut by
    the request's max tokens (finish_reason "length" / stop_reason "max_tokens").
    """

    pieces: tuple[str, ...]
    output_tokens: int
    reasoning_tokens: int
    truncated: bool

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def plan_answer(
    digest: bytes,
    model: str,
    *,
    max_tokens: int | None,
    forced_tokens: int | None,
    min_tokens: int,
    max_default_tokens: int,
    reasoning: bool | None = None,
) -> Answer:
    """The answer to the request of `digest`.

    Its length is `forced_tokens` when given, else a digest-derived number within
    [min_tokens, max_default_tokens]; either way capped by `max_tokens`. Reasoning models spend
    half of the tokens (rounded up) on reasoning.
    """
    seed = int.from_bytes(digest[:8], "big")
    default = min_tokens + seed % (max_default_tokens - min_tokens + 1)
    wanted = forced_tokens if forced_tokens is not None else default
    truncated = max_tokens is not None and wanted > max_tokens
    total = max_tokens if truncated and max_tokens is not None else wanted
    if reasoning is None:
        reasoning = is_reasoning_model(model)
    reasoning_tokens = (total + 1) // 2 if reasoning else 0
    pieces = _pieces(digest[8:], total - reasoning_tokens, finish=not truncated)
    return Answer(pieces, total, reasoning_tokens, truncated)


def _pieces(digest: bytes, count: int, *, finish: bool) -> tuple[str, ...]:
    """`count` one-token pieces; piece i depends only on the digest and pieces before it."""
    if count <= 0:
        return ()
    stream = hashlib.shake_256(digest).digest(2 * count)  # an XOF: longer outputs extend shorter ones
    words = len(_WORDS)
    out: list[str] = [_CAPITALISED[(stream[0] << 8 | stream[1]) % words]]
    words_left = 4 + stream[1] % 11
    append = out.append
    for i in range(2, 2 * count, 2):
        high = stream[i]
        pick = (high << 8 | stream[i + 1]) % words
        previous = out[-1]
        if previous == ".":
            append(_SPACED_CAPITALISED[pick])
            words_left = 4 + stream[i + 1] % 11
        elif words_left <= 0:
            append(".")
        elif high < 20 and words_left > 2 and previous != ",":
            append(",")
        else:
            append(_SPACED[pick])
            words_left -= 1
    if finish and count >= 2 and out[-1] not in _PUNCTUATION and out[-2] not in _PUNCTUATION:
        out[-1] = "."
    return tuple(out)
