"""Anthropic Messages request bodies as a declarative spec.

Types and ranges follow the Anthropic API reference. Anthropic fields are not nullable.
Top-level parameters not listed here are forwarded as they are.
"""

from __future__ import annotations

import re

from costplane.gateway.validate import MAX_OUTPUT_TOKENS, Any_, Arr, Bool, Int, Map, Num, Obj, OneOf, Spec, Str, Tagged

__all__ = ["BLOCK_TYPES", "MAX_TOOL_USES", "MESSAGES_BODY"]

#: the largest `max_uses` accepted on a server tool (the worst-case bound reserves that many uses)
MAX_TOOL_USES = 2**31 - 1

_STR = Str()
_NAME = Str(nonempty=True)
_OBJ = Map()
_CACHE = Obj({"type": Str(enum=frozenset({"ephemeral"})), "ttl": _STR}, required=("type",))
#: server tools are versioned by date: web_search_20250305, bash_20250124, …
_DATED_TOOL = re.compile(r"^[a-z][a-z0-9_]*_\d{8}$")


def _block(fields: dict[str, Spec], *required: str) -> Obj:
    return Obj({"type": _STR, "cache_control": _CACHE, **fields}, required=required)


_TEXT = _block({"text": _STR, "citations": Arr(_OBJ)}, "text")
_SOURCE = Tagged({"base64": Obj({"media_type": _NAME, "data": _STR}, required=("media_type", "data")),
                  "url": Obj({"url": _NAME}, required=("url",)),
                  "file": Obj({"file_id": _NAME}, required=("file_id",)),
                  "text": Obj({"media_type": _STR, "data": _STR}, required=("data",)),
                  "content": Obj({"content": OneOf(_STR, Arr(_OBJ))}, required=("content",))})
_IMAGE = _block({"source": _SOURCE}, "source")
_DOCUMENT = _block({"source": _SOURCE, "title": _STR, "context": _STR, "citations": _OBJ}, "source")
_RESULT_PARTS = Tagged({"text": _TEXT, "image": _IMAGE, "document": _DOCUMENT,
                        "search_result": _block({"source": _STR, "title": _STR, "content": Arr(_TEXT)},
                                                "source", "title", "content")})
_SERVER_RESULT = _block({"tool_use_id": _NAME, "content": Any_()}, "tool_use_id")

BLOCK_TYPES = {
    "text": _TEXT,
    "image": _IMAGE,
    "document": _DOCUMENT,
    "search_result": _block({"source": _STR, "title": _STR, "content": Arr(_TEXT)}, "source", "title", "content"),
    "thinking": _block({"thinking": _STR, "signature": _STR}, "thinking", "signature"),
    "redacted_thinking": _block({"data": _STR}, "data"),
    "tool_use": _block({"id": _NAME, "name": _NAME, "input": _OBJ}, "id", "name", "input"),
    "tool_result": _block({"tool_use_id": _NAME, "content": OneOf(_STR, Arr(_RESULT_PARTS)), "is_error": Bool()},
                          "tool_use_id"),
    "server_tool_use": _block({"id": _NAME, "name": _NAME, "input": _OBJ}, "id", "name", "input"),
    "web_search_tool_result": _SERVER_RESULT,
    "web_fetch_tool_result": _SERVER_RESULT,
    "code_execution_tool_result": _SERVER_RESULT,
    "bash_code_execution_tool_result": _SERVER_RESULT,
    "text_editor_code_execution_tool_result": _SERVER_RESULT,
    "mcp_tool_use": _block({"id": _NAME, "name": _NAME, "server_name": _NAME, "input": _OBJ},
                           "id", "name", "server_name", "input"),
    "mcp_tool_result": _block({"tool_use_id": _NAME, "content": OneOf(_STR, Arr(_TEXT)), "is_error": Bool()},
                              "tool_use_id"),
    "container_upload": _block({"file_id": _NAME}, "file_id"),
}

_CONTENT = OneOf(_STR, Arr(Tagged(BLOCK_TYPES)))
_MESSAGE = Obj({"role": Str(enum=frozenset({"user", "assistant"})), "content": _CONTENT},
               required=("role", "content"))
_CLIENT_TOOL = Obj({"type": _STR, "name": _NAME, "description": _STR, "input_schema": _OBJ,
                    "cache_control": _CACHE}, required=("name", "input_schema"))
#: a server tool; `max_uses` caps the uses of one billed per use (web search), see docs/gateway.md
_TOOL = Obj({"type": _STR, "name": _NAME, "cache_control": _CACHE, "max_uses": Int(1, MAX_TOOL_USES)},
            required=("name",))
_TOOL_CHOICE = Tagged({
    "auto": Obj({"disable_parallel_tool_use": Bool()}),
    "any": Obj({"disable_parallel_tool_use": Bool()}),
    "tool": Obj({"name": _NAME, "disable_parallel_tool_use": Bool()}, required=("name",)),
    "none": Obj(),
})
_THINKING = Tagged({"enabled": Obj({"budget_tokens": Int(1024)}, required=("budget_tokens",)),
                    "disabled": Obj()})

MESSAGES_BODY = Obj({
    "model": _NAME,
    "messages": Arr(_MESSAGE, min_items=1),
    "max_tokens": Int(1, MAX_OUTPUT_TOKENS),
    "metadata": Obj({"user_id": _STR}, nullable=frozenset({"user_id"})),
    "service_tier": Str(enum=frozenset({"auto", "standard_only"})),
    "stop_sequences": Arr(_STR),
    "stream": Bool(),
    "system": OneOf(_STR, Arr(Tagged({"text": _TEXT}))),
    "temperature": Num(0.0, 1.0),
    "thinking": _THINKING,
    "tool_choice": _TOOL_CHOICE,
    "tools": Arr(Tagged({"custom": _CLIENT_TOOL}, default="custom", pattern=_DATED_TOOL, patterned=_TOOL)),
    "top_k": Int(0),
    "top_p": Num(0.0, 1.0),
}, required=("model", "messages", "max_tokens"))
