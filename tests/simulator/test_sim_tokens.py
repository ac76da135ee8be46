"""The token rule: deterministic, covers the text, never more tokens than UTF-8 bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from costplane.simulator.answers import plan_answer, request_digest
from costplane.simulator.tokens import (
    PER_MESSAGE_OVERHEAD,
    REPLY_PRIMING,
    count_chat_prompt_tokens,
    count_content_tokens,
    count_tokens,
    tokenize,
)


def test_examples() -> None:
    assert tokenize("Hello, world!") == ["Hello", ",", " world", "!"]
    assert tokenize("It's 12345") == ["It", "'s", " 123", "45"]
    assert tokenize("internationalisation") == ["internatio", "nalisation"]
    assert count_tokens("") == 0
    assert count_tokens("日本語") == 3
    assert count_tokens("a  b") == 3  # "a", " ", " b"


def test_overhead_constants_follow_openai() -> None:
    assert (PER_MESSAGE_OVERHEAD, REPLY_PRIMING) == (3, 3)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]
    assert count_chat_prompt_tokens(messages) == 3 + (3 + 3) + (3 + 2)


def test_content_parts_count_their_text_only() -> None:
    parts = [{"type": "text", "text": "Hello there"},
             {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    assert count_content_tokens(parts) == 2
    assert count_content_tokens(None) == 0


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_tokens_cover_text_and_never_exceed_bytes(text: str) -> None:
    tokens = tokenize(text)
    assert "".join(tokens) == text
    assert all(token for token in tokens)
    assert count_tokens(text) == len(tokens) <= len(text.encode("utf-8"))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["system", "user", "assistant"]), st.text(), st.booleans()),
                min_size=1, max_size=5))
def test_prompt_tokens_bounded_by_bytes_plus_overhead(spec: list[tuple[str, str, bool]]) -> None:
    messages = [{"role": role, "content": [{"type": "text", "text": text}] if as_parts else text}
                for role, text, as_parts in spec]
    total_bytes = sum(len(text.encode("utf-8")) for _, text, _ in spec)
    bound = total_bytes + PER_MESSAGE_OVERHEAD * len(messages) + REPLY_PRIMING
    assert count_chat_prompt_tokens(messages) <= bound


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.integers(0, 300), st.sampled_from(["gpt-4o", "o3"]))
def test_answer_text_counts_exactly_its_visible_tokens(digest: bytes, n: int, model: str) -> None:
    answer = plan_answer(digest, model, max_tokens=None, forced_tokens=n, min_tokens=16,
                         max_default_tokens=200)
    assert answer.output_tokens == n
    assert count_tokens(answer.text) == len(answer.pieces) == n - answer.reasoning_tokens
    if model == "o3" and n:
        assert answer.reasoning_tokens > 0


def test_default_length_range_and_cap() -> None:
    lengths = set()
    for i in range(200):
        answer = plan_answer(request_digest("gpt-4o", i), "gpt-4o", max_tokens=None, forced_tokens=None,
                             min_tokens=16, max_default_tokens=200)
        assert 16 <= answer.output_tokens <= 200 and not answer.truncated
        lengths.add(answer.output_tokens)
    assert len(lengths) > 50
    capped = plan_answer(b"\xff" * 32, "gpt-4o", max_tokens=5, forced_tokens=50, min_tokens=16,
                         max_default_tokens=200)
    assert (capped.output_tokens, capped.truncated) == (5, True)
