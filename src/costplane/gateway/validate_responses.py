"""The OpenAI Responses API request body (`POST /v1/responses`) as a declarative spec.

Types and ranges follow the OpenAI API reference. Input items are told apart by `type` (an item
without one is a message, as the API reads it); every input item and tool type of the API is
listed, and a type that is not is refused, because an unknown item would be forwarded and metered
blind. Items and tools the gateway only forwards are open objects; what the gateway reads to bound
and meter the call (messages, function calls and their outputs, reasoning items, built-in tools
billed per call, `max_output_tokens`, `max_tool_calls`) is typed.
"""

from __future__ import annotations

from costplane.gateway.validate import MAX_OUTPUT_TOKENS, Arr, Bool, Int, Map, Num, Obj, OneOf, Str, Tagged

__all__ = ["INPUT_ITEM_TYPES", "MAX_TOOL_CALLS", "MIN_OUTPUT_TOKENS", "RESPONSES_BODY", "TOOL_TYPES"]

#: OpenAI's smallest accepted `max_output_tokens`
MIN_OUTPUT_TOKENS = 16
#: the largest `max_tool_calls` accepted (the worst-case bound reserves that many built-in tool calls)
MAX_TOOL_CALLS = 2**31 - 1

_STR = Str()
_NAME = Str(nonempty=True)
_OBJ = Map()
_OPEN = Obj()

_INPUT_TEXT = Obj({"text": _STR}, required=("text",))
_INPUT_IMAGE = Obj({"image_url": _STR, "file_id": _STR, "detail": Str(enum=frozenset({"auto", "low", "high",
                                                                                     "original"}))})
_INPUT_FILE = Obj({"file_id": _STR, "file_data": _STR, "file_url": _STR, "filename": _STR})
_INPUT_AUDIO = Obj({"input_audio": Obj({"data": _STR, "format": _NAME}, required=("data", "format"))},
                   required=("input_audio",))
_OUTPUT_TEXT = Obj({"text": _STR, "annotations": Arr(_OBJ), "logprobs": Arr(_OBJ)}, required=("text",))
_REFUSAL = Obj({"refusal": _STR}, required=("refusal",))

_CONTENT_PARTS = Tagged({"input_text": _INPUT_TEXT, "input_image": _INPUT_IMAGE, "input_file": _INPUT_FILE,
                         "input_audio": _INPUT_AUDIO, "output_text": _OUTPUT_TEXT, "refusal": _REFUSAL})
_MESSAGE = Obj({"role": Str(enum=frozenset({"user", "assistant", "system", "developer"})),
                "content": OneOf(_STR, Arr(_CONTENT_PARTS)), "id": _STR, "status": _STR, "phase": _STR},
               required=("role", "content"))
_FUNCTION_CALL = Obj({"call_id": _NAME, "name": _NAME, "arguments": _STR, "id": _STR, "status": _STR,
                      "namespace": _STR}, required=("call_id", "name", "arguments"))
_OUTPUT_PARTS = Tagged({"input_text": _INPUT_TEXT, "input_image": _INPUT_IMAGE, "input_file": _INPUT_FILE,
                        "output_text": _OUTPUT_TEXT})
_FUNCTION_OUTPUT = Obj({"call_id": _NAME, "output": OneOf(_STR, Arr(_OUTPUT_PARTS)), "id": _STR, "status": _STR},
                       required=("call_id", "output"))
_REASONING = Obj({"id": _STR, "summary": Arr(Obj({"text": _STR, "type": _STR})), "content": Arr(_OBJ),
                  "encrypted_content": _STR, "status": _STR}, nullable=frozenset({"encrypted_content", "content"}))

#: every input item type of the API; the ones the gateway reads are typed
INPUT_ITEM_TYPES = {
    "message": _MESSAGE,
    "function_call": _FUNCTION_CALL,
    "function_call_output": _FUNCTION_OUTPUT,
    "reasoning": _REASONING,
    "item_reference": Obj({"id": _NAME}, required=("id",)),
    **{kind: _OPEN for kind in (
        "web_search_call", "file_search_call", "computer_call", "computer_call_output", "code_interpreter_call",
        "image_generation_call", "local_shell_call", "local_shell_call_output", "mcp_list_tools",
        "mcp_approval_request", "mcp_approval_response", "mcp_call", "custom_tool_call", "custom_tool_call_output",
        "compaction", "compaction_trigger", "shell_call", "shell_call_output", "apply_patch_call",
        "apply_patch_call_output", "tool_search_call", "tool_search_output", "program", "program_output",
        "additional_tools", "configuration_update")},
}

_FUNCTION_TOOL = Obj({"name": _NAME, "description": _STR, "parameters": _OBJ, "strict": Bool()},
                     required=("name",), nullable=frozenset({"description", "parameters", "strict"}))
_WEB_SEARCH = Obj({"search_context_size": Str(enum=frozenset({"low", "medium", "high"})), "user_location": _OBJ,
                   "filters": _OBJ}, nullable=frozenset({"user_location", "filters"}))
#: every tool type of the API; the ones billed per call (web and file search) are counted by the bound
TOOL_TYPES = {
    "function": _FUNCTION_TOOL,
    "custom": Obj({"name": _NAME, "description": _STR, "format": _OBJ}, required=("name",)),
    "file_search": Obj({"vector_store_ids": Arr(_STR), "max_num_results": Int(1, 50), "filters": _OBJ,
                        "ranking_options": _OBJ}, required=("vector_store_ids",), nullable=frozenset({"filters"})),
    "web_search": _WEB_SEARCH,
    "web_search_2025_08_26": _WEB_SEARCH,
    "web_search_preview": _WEB_SEARCH,
    "web_search_preview_2025_03_11": _WEB_SEARCH,
    **{kind: _OPEN for kind in (
        "computer", "computer_use_preview", "mcp", "code_interpreter", "image_generation", "local_shell", "shell",
        "apply_patch", "namespace", "tool_search", "programmatic_tool_calling")},
}

_TOOL_CHOICE = OneOf(Str(enum=frozenset({"none", "auto", "required"})), Obj({"type": _NAME, "name": _STR},
                                                                            required=("type",)))
_FORMAT = Tagged({
    "text": Obj(),
    "json_object": Obj(),
    "json_schema": Obj({"name": _NAME, "schema": _OBJ, "description": _STR, "strict": Bool()},
                       required=("name", "schema"), nullable=frozenset({"strict", "description"})),
})

RESPONSES_BODY = Obj({
    "model": _NAME,
    "input": OneOf(_STR, Arr(Tagged(INPUT_ITEM_TYPES, default="message"))),
    "instructions": _STR,
    "background": Bool(),
    "conversation": OneOf(_NAME, Obj({"id": _NAME}, required=("id",))),
    "include": Arr(_STR),
    "max_output_tokens": Int(MIN_OUTPUT_TOKENS, MAX_OUTPUT_TOKENS),
    "max_tool_calls": Int(0, MAX_TOOL_CALLS),
    "metadata": Map(_STR, max_items=16),
    "parallel_tool_calls": Bool(),
    "previous_response_id": _NAME,
    "prompt": Obj({"id": _NAME, "version": _STR, "variables": _OBJ}, required=("id",),
                  nullable=frozenset({"version", "variables"})),
    "prompt_cache_key": _STR,
    "prompt_cache_retention": _STR,
    "reasoning": Obj({"effort": _STR, "summary": _STR, "generate_summary": _STR},
                     nullable=frozenset({"effort", "summary", "generate_summary"})),
    "safety_identifier": _STR,
    "service_tier": _STR,
    "store": Bool(),
    "stream": Bool(),
    "stream_options": Obj({"include_obfuscation": Bool()}),
    "temperature": Num(0.0, 2.0),
    "text": Obj({"format": _FORMAT, "verbosity": _STR}, nullable=frozenset({"verbosity"})),
    "tool_choice": _TOOL_CHOICE,
    "tools": Arr(Tagged(TOOL_TYPES)),
    "top_logprobs": Int(0, 20),
    "top_p": Num(0.0, 1.0),
    "truncation": Str(enum=frozenset({"auto", "disabled"})),
    "user": _STR,
}, required=("model",), nullable=frozenset({
    "instructions", "background", "conversation", "include", "max_output_tokens", "max_tool_calls", "metadata",
    "parallel_tool_calls", "previous_response_id", "prompt", "prompt_cache_key", "prompt_cache_retention",
    "reasoning", "safety_identifier", "service_tier", "store", "stream", "stream_options", "temperature", "text",
    "tool_choice", "top_logprobs", "top_p", "truncation", "user",
}))
