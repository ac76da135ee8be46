"""Gemini API request bodies (`generateContent`, `embedContent`, `batchEmbedContents`) as a declarative spec.

Types and ranges follow the Gemini API reference. Google's JSON parser accepts every field in
lowerCamelCase and in snake_case (the official Python client itself sends `thinking_budget`), so
each known field is listed under both spellings; `spelled_twice` refuses a body that sets one
field under both. Fields not listed here are forwarded as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from costplane.gateway.validate import MAX_OUTPUT_TOKENS, Any_, Arr, Bool, Int, Map, Num, Obj, Spec, Str

__all__ = ["BATCH_EMBED_BODY", "EMBED_BODY", "GENERATE_BODY", "MAX_THINKING_BUDGET", "get", "snake",
           "spelled_twice"]

#: Largest `thinkingBudget` accepted (far above any model's; it keeps worst-case sums sane).
MAX_THINKING_BUDGET = 1_000_000

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
