"""OpenAI request bodies as declarative specs: Chat Completions and Embeddings.

Types and ranges follow the OpenAI API reference. Fields documented as nullable accept `null`.
Top-level parameters not listed here are forwarded as they are.
"""

from __future__ import annotations

from typing import Any

from costplane.gateway.validate import (
    MAX_OUTPUT_TOKENS,
    Arr,
    Bool,
    Int,
    Map,
    Mismatch,
    Num,
    Obj,
    OneOf,
    Str,
    Tagged,
    kind_of,
)

__all__ = ["CHAT_BODY", "CHAT_ROLES", "EMBEDDINGS_BODY", "MAX_EMBEDDING_INPUTS", "USER_PART_TYPES"]

CHAT_ROLES = ("developer", "system", "user", "assistant", "tool", "function")
MAX_EMBEDDING_INPUTS = 2048

_STR = Str()
_NAME = Str(nonempty=True)
_OBJ = Map()

_TEXT = Obj({"type": _STR, "text": _STR}, required=("text",))
_IMAGE = Obj({"image_url": Obj({"url": _NAME, "detail": Str(enum=frozenset({"auto", "low", "high"}))},
                               required=("url",))}, required=("image_url",))
_AUDIO = Obj({"input_audio": Obj({"data": _STR, "format": _NAME}, required=("data", "format"))},
             required=("input_audio",))
_FILE = Obj({"file": Obj({"file_data": _STR, "file_id": _STR, "filename": _STR})}, required=("file",))
_REFUSAL = Obj({"refusal": _STR}, required=("refusal",))

USER_PART_TYPES = {"text": _TEXT, "image_url": _IMAGE, "input_audio": _AUDIO, "file": _FILE}


def _content(parts: dict[str, Obj]) -> OneOf:
    return OneOf(_STR, Arr(Tagged(parts)))


_TOOL_CALL = Tagged({
    "function": Obj({"id": _STR, "function": Obj({"name": _NAME, "arguments": _STR}, required=("name",))},
                    required=("function",)),
    "custom": Obj({"id": _STR, "custom": Obj({"name": _NAME, "input": _STR}, required=("name",))},
                  required=("custom",)),
})
_COMMON = {"role": Str(enum=frozenset(CHAT_ROLES)), "name": _STR}

_MESSAGE = Tagged({
    "developer": Obj({**_COMMON, "content": _content({"text": _TEXT})}, required=("content",)),
    "system": Obj({**_COMMON, "content": _content({"text": _TEXT})}, required=("content",)),
    "user": Obj({**_COMMON, "content": _content(USER_PART_TYPES)}, required=("content",)),
    "assistant": Obj({**_COMMON, "content": _content({"text": _TEXT, "refusal": _REFUSAL}),
                      "refusal": _STR, "tool_calls": Arr(_TOOL_CALL), "audio": _OBJ,
                      "function_call": Obj({"name": _NAME, "arguments": _STR})},
                     nullable=frozenset({"content", "refusal", "audio", "function_call"})),
    "tool": Obj({**_COMMON, "content": _content({"text": _TEXT}), "tool_call_id": _STR},
                required=("content", "tool_call_id")),
    "function": Obj({**_COMMON, "content": _STR}, required=("name",), nullable=frozenset({"content"})),
}, tag="role")

_FUNCTION = Obj({"name": _NAME, "description": _STR, "parameters": _OBJ, "strict": Bool()}, required=("name",),
                nullable=frozenset({"strict"}))
_TOOL = Tagged({
    "function": Obj({"function": _FUNCTION}, required=("function",)),
    "custom": Obj({"custom": Obj({"name": _NAME, "description": _STR, "format": _OBJ}, required=("name",))},
                  required=("custom",)),
})
_TOOL_CHOICE = OneOf(Str(enum=frozenset({"none", "auto", "required"})), Tagged({
    "function": Obj({"function": Obj({"name": _NAME}, required=("name",))}, required=("function",)),
    "custom": Obj({"custom": Obj({"name": _NAME}, required=("name",))}, required=("custom",)),
    "allowed_tools": Obj({"allowed_tools": Obj({"mode": _STR, "tools": Arr(_OBJ)}, required=("mode", "tools"))},
                         required=("allowed_tools",)),
}))
_RESPONSE_FORMAT = Tagged({
    "text": Obj(),
    "json_object": Obj(),
    "json_schema": Obj({"json_schema": Obj({"name": _NAME, "description": _STR, "schema": _OBJ, "strict": Bool()},
                                           required=("name",), nullable=frozenset({"strict"}))},
                       required=("json_schema",)),
})
_PENALTY = Num(-2.0, 2.0)

CHAT_BODY = Obj({
    "model": _NAME,
    "messages": Arr(_MESSAGE, min_items=1),
    "audio": _OBJ,
    "frequency_penalty": _PENALTY,
    "function_call": OneOf(Str(enum=frozenset({"none", "auto"})), Obj({"name": _NAME}, required=("name",))),
    "functions": Arr(_FUNCTION, max_items=128),
    "logit_bias": Map(Num(-100.0, 100.0)),
    "logprobs": Bool(),
    "max_completion_tokens": Int(1, MAX_OUTPUT_TOKENS),
    "max_tokens": Int(1, MAX_OUTPUT_TOKENS),
    "metadata": Map(_STR, max_items=16),
    "modalities": Arr(_STR),
    "n": Int(1, 128),
    "parallel_tool_calls": Bool(),
    "prediction": _OBJ,
    "presence_penalty": _PENALTY,
    "prompt_cache_key": _STR,
    "reasoning_effort": _STR,
    "response_format": _RESPONSE_FORMAT,
    "safety_identifier": _STR,
    "seed": Int(-(2**63), 2**63 - 1),
    "service_tier": _STR,
    "stop": OneOf(_STR, Arr(_STR, max_items=4)),
    "store": Bool(),
    "stream": Bool(),
    "stream_options": Obj({"include_usage": Bool(), "include_obfuscation": Bool()}),
    "temperature": Num(0.0, 2.0),
    "tool_choice": _TOOL_CHOICE,
    "tools": Arr(_TOOL),
    "top_logprobs": Int(0, 20),
    "top_p": Num(0.0, 1.0),
    "user": _STR,
    "verbosity": _STR,
    "web_search_options": _OBJ,
}, required=("model", "messages"), nullable=frozenset({
    "audio", "frequency_penalty", "function_call", "logit_bias", "logprobs", "max_completion_tokens", "max_tokens",
    "metadata", "modalities", "n", "prediction", "presence_penalty", "reasoning_effort", "seed", "service_tier",
    "stop", "store", "stream", "stream_options", "temperature", "top_logprobs", "top_p", "verbosity",
}))


class _SameKind(Arr):
    """An array whose items all have one JSON type (embeddings take strings *or* token arrays)."""

    def check(self, value: Any, depth: int) -> None:
        Arr.check(self, value, depth)
        first = kind_of(value[0]) if value else ""
        for index, element in enumerate(value):
            if kind_of(element) != first:
                raise Mismatch(f"expected {first} items like the first, got {kind_of(element)}", index)


_TOKENS = Arr(Int(0), min_items=1)
EMBEDDINGS_BODY = Obj({
    "model": _NAME,
    "input": OneOf(Str(nonempty=True), _SameKind(OneOf(Str(nonempty=True), Int(0), _TOKENS), min_items=1,
                                                 max_items=MAX_EMBEDDING_INPUTS)),
    "dimensions": Int(1),
    "encoding_format": Str(enum=frozenset({"float", "base64"})),
    "user": _STR,
}, required=("model", "input"))
