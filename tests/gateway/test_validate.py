"""The declarative body schema on its own: paths, types, nesting, open objects, tagged unions."""

from __future__ import annotations

import re
from typing import Any

import pytest

from costplane.gateway.validate import (
    MAX_DEPTH,
    Arr,
    BodyError,
    Bool,
    Int,
    Map,
    Num,
    Obj,
    OneOf,
    Str,
    Tagged,
    check_body,
)
from costplane.gateway.validate_anthropic import MESSAGES_BODY
from costplane.gateway.validate_openai import CHAT_BODY, EMBEDDINGS_BODY

SPEC = Obj({
    "flag": Bool(),
    "count": Int(1, 10),
    "ratio": Num(0, 1),
    "items": Arr(Tagged({"a": Obj({"text": Str()}, required=("text",))}, default="a",
                        pattern=re.compile(r"^b_\d+$"), patterned=Obj()), max_items=3),
    "either": OneOf(Str(), Arr(Int())),
    "free": Map(),
}, required=("count",), nullable=frozenset({"ratio"}))


def error(body: Any, spec: Obj = SPEC) -> tuple[str, str]:
    with pytest.raises(BodyError) as info:
        check_body(spec, body)
    return info.value.param, info.value.detail


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def test_valid_bodies_pass_with_unknown_keys_forwarded_and_nullable_nulls() -> None:
    check_body(SPEC, {"count": 3, "ratio": None, "items": [{"text": "x"}, {"type": "b_20250101", "z": 1}],
                      "either": [1, 2], "something_new": {"deep": [1, {"x": None}]}})


@pytest.mark.parametrize(
    ("body", "param", "needle"),
    [
        ({}, "count", "required"),
        ({"count": True}, "count", "expected an integer, got boolean"),
        ({"count": 2.0}, "count", "expected an integer, got number"),
        ({"count": 11}, "count", "from 1 to 10"),
        ({"count": 1, "flag": "yes"}, "flag", "boolean"),
        ({"count": 1, "flag": 1}, "flag", "boolean"),
        ({"count": 1, "ratio": "0.5"}, "ratio", "number"),
        ({"count": 1, "items": [{"text": "x"}, {"type": "c"}]}, "items[1].type", "unknown type"),
        ({"count": 1, "items": [{"text": 5}]}, "items[0].text", "expected a string"),
        ({"count": 1, "items": [{}] * 4}, "items", "at most 3"),
        ({"count": 1, "either": [1, "2"]}, "either[1]", "integer"),
        ({"count": 1, "either": {}}, "either", "a string or an array"),
        ({"count": 1, "free": []}, "free", "object"),
    ],
)
def test_each_mismatch_names_its_field_path(body: Any, param: str, needle: str) -> None:
    got_param, detail = error(body)
    assert got_param == param
    assert needle in detail


def test_nesting_is_exact_at_the_limit_in_free_form_values() -> None:
    # the body is level 1, "free" level 2 … MAX_DEPTH levels in all pass; one more does not
    check_body(SPEC, {"count": 1, "free": {"x": nested(MAX_DEPTH - 2)}})
    param, detail = error({"count": 1, "free": {"x": nested(MAX_DEPTH - 1)}})
    assert param == "free.x" + "[0]" * (MAX_DEPTH - 2) and "nested deeper than 64" in detail
    param, _ = error({"count": 1, "unknown": nested(MAX_DEPTH)})
    assert param.startswith("unknown[0]")


def test_protocol_tables_accept_typical_requests() -> None:
    check_body(CHAT_BODY, {"model": "gpt-4o", "messages": [
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hi"},
                                     {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"}],
        "stream": True, "stream_options": {"include_usage": True}, "temperature": None, "n": 1,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]})
    check_body(EMBEDDINGS_BODY, {"model": "text-embedding-3-small", "input": [[1, 2], [3]]})
    check_body(MESSAGES_BODY, {"model": "claude-haiku-4-5", "max_tokens": 10, "system": [
        {"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}},
                  {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]})


@pytest.mark.parametrize(
    ("spec", "body", "param"),
    [
        (CHAT_BODY, {"model": "m", "messages": [{"role": "system", "content": [{"type": "image_url"}]}]},
         "messages[0].content[0].type"),
        (CHAT_BODY, {"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": ["a"] * 5}, "stop"),
        (EMBEDDINGS_BODY, {"model": "m", "input": [""]}, "input[0]"),
        (MESSAGES_BODY, {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}],
                         "tools": [{"type": "computer", "name": "c"}]}, "tools[0].type"),
        (MESSAGES_BODY, {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}],
                         "thinking": {"type": "enabled", "budget_tokens": 100}}, "thinking.budget_tokens"),
    ],
)
def test_protocol_tables_refuse_what_the_provider_does_not_document(spec: Obj, body: Any, param: str) -> None:
    assert error(body, spec)[0] == param
