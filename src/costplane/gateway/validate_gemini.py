"""Gemini API request bodies (`generateContent`, `embedContent`, `batchEmbedContents`) as a declarative
spec, and what a valid body bounds: its input tokens and its output caps (see `protocols.gemini`).

Types and ranges follow the Gemini API reference. Google's JSON parser accepts every field in
lowerCamelCase and in snake_case (the official Python client itself sends `thinking_budget`), so
each known field is listed under both spellings; `spelled_twice` refuses a body that sets one
field under both. Fields not listed here are forwarded as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from costplane.gateway.tokens import BYTES_PER_TOKEN_ESTIMATE, IMAGE_BOUND, PER_MESSAGE_BOUND, PRIMING_BOUND, InputSize
from costplane.gateway.validate import MAX_OUTPUT_TOKENS, Any_, Arr, Bool, Int, Map, Num, Obj, Spec, Str

__all__ = ["BATCH_EMBED_BODY", "BUILTIN_TOOLS", "CONTEXT_BOUND", "EMBED_BODY", "GENERATE_BODY", "MAX_THINKING_BUDGET",
           "SEARCH_TOOLS", "bills_per_query", "builtin_tools", "get", "measure_embed", "measure_generate",
           "output_caps", "snake", "spelled_twice", "thinking_budget"]

#: Largest `thinkingBudget` accepted (far above any model's; it keeps worst-case sums sane).
MAX_THINKING_BUDGET = 1_000_000

#: The largest context window of a Gemini model: the bound of input a request cannot bound itself.
CONTEXT_BOUND = 1_048_576
#: Tools the model runs itself; their results come back as `toolUsePromptTokenCount`.
BUILTIN_TOOLS = ("googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext", "googleMaps",
                 "fileSearch", "computerUse")
SEARCH_TOOLS = ("googleSearch", "googleSearchRetrieval")

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake(name: str) -> str:
    """`maxOutputTokens` -> `max_output_tokens`."""
    return _CAMEL.sub("_", name).lower()


def get(obj: Mapping[str, Any], name: str) -> Any:
    """`obj[name]` under its lowerCamelCase name, else under its snake_case one (None if neither)."""
    value = obj.get(name)
    return value if value is not None else obj.get(snake(name))


def spelled_twice(obj: Mapping[str, Any], *names: str) -> str | None:
    """The first of `names` that `obj` sets under both spellings, or None."""
    for name in names:
        other = snake(name)
        if other != name and obj.get(name) is not None and obj.get(other) is not None:
            return name
    return None


def _fields(**specs: Spec) -> dict[str, Spec]:
    """Each field under its camelCase name and its snake_case name."""
    out: dict[str, Spec] = {}
    for name, spec in specs.items():
        out[name] = spec
        out[snake(name)] = spec
    return out


def _obj(required: tuple[str, ...] = (), **specs: Spec) -> Obj:
    return Obj(_fields(**specs), required=required)


_STR = Str()
_NAME = Str(nonempty=True)
_MAP = Map()

_PART = _obj(
    text=_STR,
    inlineData=_obj(mimeType=_NAME, data=_STR),
    fileData=_obj(mimeType=_STR, fileUri=_NAME),
    functionCall=_obj(("name",), name=_NAME, args=_MAP, id=_STR),
    functionResponse=_obj(("name",), name=_NAME, response=_MAP, id=_STR, parts=Arr(_MAP)),
    executableCode=_obj(language=_STR, code=_STR),
    codeExecutionResult=_obj(outcome=_STR, output=_STR),
    thought=Bool(),
    thoughtSignature=_STR,
    videoMetadata=_MAP,
)
_ROLE = Str(enum=frozenset({"user", "model", "function", "tool", "system"}))
CONTENT = _obj(("parts",), role=_ROLE, parts=Arr(_PART, min_items=1))
_FUNCTION = _obj(("name",), name=_NAME, description=_STR, parameters=_MAP, parametersJsonSchema=Any_(),
                 response=_MAP, responseJsonSchema=Any_(), behavior=_STR)
_TOOL = _obj(functionDeclarations=Arr(_FUNCTION), googleSearch=_MAP, googleSearchRetrieval=_MAP,
             codeExecution=_MAP, urlContext=_MAP, googleMaps=_MAP, fileSearch=_MAP, computerUse=_MAP)
_THINKING = _obj(thinkingBudget=Int(-1, MAX_THINKING_BUDGET), includeThoughts=Bool(),
                 thinkingLevel=Str(nonempty=True))
_GENERATION = _obj(
    maxOutputTokens=Int(1, MAX_OUTPUT_TOKENS),
    candidateCount=Int(1, 1),  # one candidate per governed call, like OpenAI's n=1
    temperature=Num(0.0, 2.0),
    topP=Num(0.0, 1.0),
    topK=Int(1),
    seed=Int(),
    presencePenalty=Num(),
    frequencyPenalty=Num(),
    stopSequences=Arr(_STR, max_items=5),
    responseMimeType=_STR,
    responseSchema=_MAP,
    responseJsonSchema=Any_(),
    responseModalities=Arr(_STR),
    responseLogprobs=Bool(),
    logprobs=Int(0, 20),
    mediaResolution=_STR,
    speechConfig=_MAP,
    thinkingConfig=_THINKING,
)

GENERATE_BODY = _obj(
    ("contents",),
    contents=Arr(CONTENT, min_items=1),
    systemInstruction=CONTENT,
    tools=Arr(_TOOL),
    toolConfig=_obj(functionCallingConfig=_obj(mode=_STR, allowedFunctionNames=Arr(_NAME))),
    safetySettings=Arr(_obj(category=_STR, threshold=_STR)),
    generationConfig=_GENERATION,
    cachedContent=_NAME,
    labels=Map(_STR),
    model=_STR,
)

_EMBED_FIELDS = {"model": _STR, "content": CONTENT, "taskType": _STR, "title": _STR,
                 "outputDimensionality": Int(1, 1_000_000)}
EMBED_BODY = _obj(("content",), **_EMBED_FIELDS)
BATCH_EMBED_BODY = _obj(("requests",), requests=Arr(_obj(("content",), **_EMBED_FIELDS), min_items=1))


def _model_name(model: str) -> str:
    return model.rsplit("/", 1)[-1].lower()


def bills_per_query(model: str) -> bool:
    """Gemini 3 and later bill grounding per search query; earlier models once per grounded prompt."""
    name = _model_name(model)
    return name.startswith("gemini-") and not name.startswith(("gemini-1", "gemini-2"))


def _part_bytes(part: Mapping[str, Any]) -> tuple[int, int, bool]:
    """(bytes, image parts, unbounded) of one part."""
    size = 0
    text = part.get("text")
    if isinstance(text, str):
        size += len(text.encode("utf-8"))
    for name in ("functionCall", "functionResponse", "executableCode", "codeExecutionResult"):
        value = get(part, name)
        if value is not None:
            size += len(orjson.dumps(value))
    signature = get(part, "thoughtSignature")
    if isinstance(signature, str):
        size += len(signature)
    for name in ("inlineData", "fileData"):
        media = get(part, name)
        if isinstance(media, Mapping):
            mime = get(media, "mimeType")
            if isinstance(mime, str) and mime.lower().startswith("image/"):
                return size, 1, False
            return size, 0, True
    return size, 0, False


def _contents_bytes(contents: Any) -> tuple[int, int, int, bool]:
    """(contents, bytes, image parts, unbounded) of a list of Content."""
    count = size = images = 0
    unbounded = False
    for content in contents if isinstance(contents, list) else ():
        count += 1
        for part in get(content, "parts") or () if isinstance(content, Mapping) else ():
            if isinstance(part, Mapping):
                b, i, u = _part_bytes(part)
                size, images, unbounded = size + b, images + i, unbounded or u
    return count, size, images, unbounded


def builtin_tools(body: Mapping[str, Any]) -> list[tuple[int, str]]:
    """(index in tools, name) of each built-in tool the request enables."""
    found: list[tuple[int, str]] = []
    for index, tool in enumerate(body.get("tools") or ()):
        if isinstance(tool, Mapping):
            found.extend((index, name) for name in BUILTIN_TOOLS if get(tool, name) is not None)
    return found


def measure_generate(body: Mapping[str, Any]) -> InputSize:
    """Input bound of a generateContent body (see the module's docstring)."""
    system = get(body, "systemInstruction")
    count, size, images, unbounded = _contents_bytes([*body.get("contents", ()), *([system] if system else [])])
    for name in ("tools", "toolConfig"):
        value = get(body, name)
        if value is not None:
            size += len(orjson.dumps(value))
    unbounded = unbounded or bool(builtin_tools(body))
    bound = size + PRIMING_BOUND + PER_MESSAGE_BOUND * count + IMAGE_BOUND * images
    estimate = min(-(-size // BYTES_PER_TOKEN_ESTIMATE) + 3 * count + 3 + 258 * images, bound)
    return InputSize(bound=max(bound, CONTEXT_BOUND) if unbounded else bound, estimate=estimate, messages=count)


def measure_embed(requests: list[Mapping[str, Any]]) -> InputSize:
    """Input bound of embedding requests: each content's bytes plus framing."""
    count, size, images, unbounded = _contents_bytes([r.get("content") for r in requests])
    bound = size + PER_MESSAGE_BOUND * count + IMAGE_BOUND * images
    estimate = min(-(-size // BYTES_PER_TOKEN_ESTIMATE) + count, bound)
    return InputSize(bound=max(bound, CONTEXT_BOUND) if unbounded else bound, estimate=estimate, messages=count)


def thinking_budget(body: Mapping[str, Any]) -> int | None:
    """The client's explicit positive thinking budget, or None (no thinking, dynamic, or a level)."""
    config = get(body, "generationConfig") or {}
    budget = get(get(config, "thinkingConfig") or {}, "thinkingBudget")
    return budget if isinstance(budget, int) and budget > 0 else None


def output_caps(budget: int | None, enforced: int) -> tuple[int, int | None]:
    """(maxOutputTokens, thinkingBudget) to forward so that together they never pass `enforced`
    (the thinking keeps its budget unless the cap leaves the answer less than one token)."""
    if budget is None:
        return enforced, None
    sent = max(0, min(budget, enforced - 1))
    return max(1, enforced - sent), sent
