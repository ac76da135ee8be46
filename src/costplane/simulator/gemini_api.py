"""Gemini API (Google AI) endpoints: `POST /v1beta/models/{model}:{method}` and the same under `/v1`.

Methods: `generateContent`, `streamGenerateContent` (SSE with `?alt=sse`, else one JSON array
written element by element), `countTokens`, `embedContent`, `batchEmbedContents`. Errors use
Google's shape `{"error": {"code", "message", "status"}}`.

Usage follows Gemini's `usageMetadata`: `promptTokenCount` includes `cachedContentTokenCount`
(implicit caching of repeated prompt prefixes, as `caching.PrefixCache` keeps them);
`candidatesTokenCount` excludes `thoughtsTokenCount` (models from gemini-2.5 on think, within
`thinkingConfig.thinkingBudget` when one is set, 0 turns it off; `maxOutputTokens` caps thoughts
and answer together); `toolUsePromptTokenCount` (the results of built-in tools such as Google
Search or code execution) is reported apart from the prompt, and an answer grounded with Google
Search carries `groundingMetadata` with one `webSearchQueries` entry. With function declarations
the model answers a user turn with a `functionCall`, and a `functionResponse` turn with text.
Field names are accepted in lowerCamelCase and snake_case, as Google's JSON parser accepts both.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from costplane.simulator.answers import plan_answer, request_digest
from costplane.simulator.embeddings import embedding_vector
from costplane.simulator.endpoint import Call
from costplane.simulator.errors import InvalidRequest
from costplane.simulator.faults import CutResponse, HangResponse, fault_status, requested_fault
from costplane.simulator.sse import EventStreamResponse, sse_frame
from costplane.simulator.state import SimulatorState
from costplane.simulator.tokens import PER_MESSAGE_OVERHEAD, REPLY_PRIMING, count_tokens
from costplane.simulator.usage_shapes import USAGE_HEADER, deep_merge, profile_for

__all__ = ["MEDIA_TOKENS", "field", "gemini_error", "gemini_status", "routes", "thinks"]

#: Tokens one inline or file media part costs (an image tile at Gemini's rate).
MEDIA_TOKENS = 258
#: The thinking tokens a dynamic budget (-1 or none set) may spend at most in the simulator.
_DYNAMIC_THOUGHTS = 8192
_BUILTIN_TOOLS = ("googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext", "googleMaps")
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 402: "RESOURCE_EXHAUSTED", 403: "PERMISSION_DENIED",
           404: "NOT_FOUND", 409: "ABORTED", 413: "INVALID_ARGUMENT", 415: "INVALID_ARGUMENT",
           429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE",
           503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
_REDACTED = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key"})
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_JSON = "application/json"


def gemini_status(code: int) -> str:
    """Google's canonical status name of an HTTP status."""
    return _STATUS.get(code, "INTERNAL" if code >= 500 else "FAILED_PRECONDITION")


def gemini_error(code: int, message: str, *, headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"code": code, "message": message, "status": gemini_status(code)}}
    return Response(orjson.dumps(body), status_code=code, headers=headers, media_type=_JSON)


def field(obj: Mapping[str, Any], name: str) -> Any:
    """`obj[name]` in lowerCamelCase, else in snake_case (Google accepts both spellings)."""
    value = obj.get(name)
    return value if value is not None else obj.get(_CAMEL.sub("_", name).lower())


def thinks(model: str) -> bool:
    """Gemini models from 2.5 on think; 1.x, 2.0, Gemma and embedding models do not."""
    name = model.rsplit("/", 1)[-1].lower()
    return name.startswith("gemini-") and not name.startswith(("gemini-1", "gemini-2.0", "gemini-embedding"))


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"Invalid value at '{where}': expected an object.")
    return value


def _part_texts(part: Mapping[str, Any]) -> tuple[list[str], int]:
    """(texts the token rule counts, media parts) of one part."""
    texts: list[str] = []
    media = 0
    text = part.get("text")
    if isinstance(text, str):
        texts.append(text)
    for name in ("functionCall", "functionResponse", "executableCode", "codeExecutionResult"):
        value = field(part, name)
        if value is not None:
            texts.append(orjson.dumps(value).decode())
    if field(part, "inlineData") is not None or field(part, "fileData") is not None:
        media += 1
    return texts, media


def _contents(body: Mapping[str, Any], *, required: bool = True) -> list[dict[str, Any]]:
    contents = body.get("contents")
    if contents is None:
        if required:
            raise InvalidRequest("* GenerateContentRequest.contents: contents is not specified")
        return []
    if not isinstance(contents, list) or (required and not contents):
        raise InvalidRequest("Invalid value at 'contents': expected a non-empty array of Content.")
    for index, content in enumerate(contents):
        item = _obj(content, f"contents[{index}]")
        parts = item.get("parts")
        if not isinstance(parts, list) or not parts:
            raise InvalidRequest(f"* GenerateContentRequest.contents[{index}].parts: contents.parts must not be "
                                 "empty.")
        for number, part in enumerate(parts):
            _obj(part, f"contents[{index}].parts[{number}]")
        if item.get("role") not in (None, "user", "model", "function", "tool"):
            raise InvalidRequest(f"Invalid value at 'contents[{index}].role': please use a valid role: user, model.")
    return contents


def _prompt(body: Mapping[str, Any], contents: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
    """Prompt tokens (system instruction, contents, tool declarations) and the prompt as chat
    messages of text parts (what the implicit cache keys on)."""
    framed: list[tuple[str, Any]] = []
    system = field(body, "systemInstruction")
    if system is not None:
        system = _obj(system, "system_instruction")
        framed.append(("system", system.get("parts") or []))
    framed.extend((str(c.get("role") or "user"), c["parts"]) for c in contents)
    total = REPLY_PRIMING
    messages: list[dict[str, Any]] = []
    for role, parts in framed:
        total += PER_MESSAGE_OVERHEAD
        texts: list[str] = []
        for part in parts if isinstance(parts, list) else ():
            found, media = _part_texts(part) if isinstance(part, Mapping) else ([], 0)
            texts.extend(found)
            total += MEDIA_TOKENS * media
        total += sum(count_tokens(t) for t in texts)
        messages.append({"role": role, "content": [{"type": "text", "text": t} for t in texts]})
    tools = body.get("tools")
    if tools:
        total += count_tokens(orjson.dumps(tools).decode())
    return total, messages


def _declarations(body: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], int]:
    """(function declarations, built-in tools) of the request's tools."""
    decls: list[Mapping[str, Any]] = []
    builtin = 0
    for tool in body.get("tools") or ():
        if not isinstance(tool, Mapping):
            continue
        found = field(tool, "functionDeclarations")
        decls.extend(d for d in found or () if isinstance(d, Mapping) and isinstance(d.get("name"), str))
        builtin += sum(1 for name in _BUILTIN_TOOLS if field(tool, name) is not None)
    return decls, builtin


def _grounding(body: Mapping[str, Any], contents: list[dict[str, Any]]) -> dict[str, Any]:
    """`groundingMetadata` of an answer grounded with Google Search: one search query, the last
    user text's first words ({} without a search tool)."""
    tools = [t for t in body.get("tools") or () if isinstance(t, Mapping)]
    if not any(field(t, name) is not None for t in tools for name in ("googleSearch", "googleSearchRetrieval")):
        return {}
    words = [t for p in contents[-1]["parts"] if isinstance(p, Mapping) for t in _part_texts(p)[0]]
    query = " ".join(" ".join(words).split()[:6]) or "search"
    return {"groundingMetadata": {"webSearchQueries": [query],
                                  "groundingChunks": [{"web": {"uri": "https://example.invalid/result",
                                                               "title": "example.invalid"}}]}}


def _function_call(body: Mapping[str, Any], contents: list[dict[str, Any]],
                   decls: list[Mapping[str, Any]], seed: int) -> dict[str, Any] | None:
    """The call the model makes: when functions are declared, calling is not off and the last turn
    is not a function's result."""
    config = field(field(body, "toolConfig") or {}, "functionCallingConfig") or {}
    if not decls or field(config, "mode") == "NONE":
        return None
    if any(field(p, "functionResponse") is not None for p in contents[-1]["parts"] if isinstance(p, Mapping)):
        return None
    allowed = field(config, "allowedFunctionNames") or []
    named = [d for d in decls if d["name"] in allowed] or decls
    decl = named[seed % len(named)]
    schema = field(decl, "parameters") or field(decl, "parametersJsonSchema") or {}
    args: dict[str, Any] = {}
    for index, (name, prop) in enumerate(sorted((schema.get("properties") or {}).items())):
        kind = str(prop.get("type", "string")).lower() if isinstance(prop, Mapping) else "string"
        args[name] = {"integer": seed % 97 + index, "number": seed % 89 + 0.5, "boolean": bool(seed & 1)}.get(
            kind, ("ledger", "invoice", "budget", "report")[(seed + index) % 4])
    return {"name": decl["name"], "args": args}


def _generation(body: Mapping[str, Any]) -> tuple[int | None, int | None, bool]:
    """(maxOutputTokens, thinkingBudget, includeThoughts) of the request's generationConfig."""
    config = _obj(field(body, "generationConfig") or {}, "generation_config")
    limit = field(config, "maxOutputTokens")
    if limit is not None and (type(limit) is not int or limit < 1):
        raise InvalidRequest("Invalid value at 'generation_config.max_output_tokens': expected a positive integer.")
    if field(config, "candidateCount") not in (None, 1):
        raise InvalidRequest("The simulator only supports candidate_count=1.")
    thinking = _obj(field(config, "thinkingConfig") or {}, "generation_config.thinking_config")
    budget = field(thinking, "thinkingBudget")
    if budget is not None and (type(budget) is not int or budget < -1):
        raise InvalidRequest("Invalid value at 'generation_config.thinking_config.thinking_budget'.")
    return limit, budget, field(thinking, "includeThoughts") is True


def _generate(call: Call, model: str, stream: str | None) -> Response:
    body = call.body
    if field(body, "cachedContent") is not None:
        raise InvalidRequest("The simulator holds no explicit context caches (cached_content).")
    contents = _contents(body)
    limit, budget, include_thoughts = _generation(body)
    state = call.state
    config = state.config
    digest = request_digest(model, field(body, "systemInstruction"), contents, body.get("tools"))
    seed = int.from_bytes(digest[24:28], "big")
    prompt, messages = _prompt(body, contents)
    cached = state.cache.openai_cached_tokens(model, messages, prompt)
    thoughts = 0
    if thinks(model) and budget != 0:
        thoughts = min(budget if budget is not None and budget > 0 else _DYNAMIC_THOUGHTS, 16 + seed % 113)
    if limit is not None:  # maxOutputTokens caps thoughts and answer together, as Gemini enforces it
        thoughts = min(thoughts, limit - 1)
        limit -= thoughts
    decls, builtin = _declarations(body)
    tool_prompt = sum(24 + (seed >> (4 * i)) % 40 for i in range(builtin))
    called = _function_call(body, contents, decls, seed)
    parts: list[dict[str, Any]] = []
    pieces: tuple[str, ...] = ()
    finish = "STOP"
    if called is not None:
        output = min(count_tokens(called["name"]) + count_tokens(orjson.dumps(called["args"]).decode()),
                     limit or 1_000_000)
        parts.append({"functionCall": called})
    else:
        answer = plan_answer(digest, model, max_tokens=limit, forced_tokens=call.forced_output_tokens(),
                             min_tokens=config.min_output_tokens, max_default_tokens=config.max_output_tokens,
                             reasoning=False)
        output, pieces, finish = answer.output_tokens, answer.pieces, "MAX_TOKENS" if answer.truncated else "STOP"
        parts.append({"text": answer.text})
    if include_thoughts and thoughts:
        parts.insert(0, {"text": "Weighing the request before answering.", "thought": True})
    usage: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": output,
                             "totalTokenCount": prompt + output + thoughts + tool_prompt,
                             "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]}
    if cached:
        usage["cachedContentTokenCount"] = cached
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if tool_prompt:
        usage["toolUsePromptTokenCount"] = tool_prompt
    profile = profile_for(config.usage_profiles, model, call.request.headers.get(USAGE_HEADER))
    usage = deep_merge(usage, profile.get("usage") or {})
    response_id = f"sim{call.seq:016d}"
    headers = {"x-request-id": call.request_id()}
    grounding = _grounding(body, contents)
    if stream is not None:
        return _stream(call, model, response_id, parts, pieces, finish, usage, stream == "sse", headers, grounding)
    payload = {"candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": 0,
                               **grounding}],
               "usageMetadata": usage, "modelVersion": model, "responseId": response_id}
    if call.cut:
        return CutResponse(orjson.dumps(payload))
    return Response(orjson.dumps(payload), headers=headers, media_type=_JSON)


def _stream(call: Call, model: str, response_id: str, parts: list[dict[str, Any]], pieces: tuple[str, ...],
            finish: str, usage: dict[str, Any], sse: bool, headers: dict[str, str],
            grounding: dict[str, Any]) -> Response:
    """One chunk per token piece (a function call is one chunk); every chunk carries the usage so far
    (prompt side whole, candidates counted up), the last one the finish reason and the whole usage."""
    leading = [p for p in parts if p.get("thought")]
    chunks: list[tuple[list[dict[str, Any]], int]] = [(leading, 0)] if leading else []
    if pieces:
        chunks.extend(([{"text": piece}], index + 1) for index, piece in enumerate(pieces))
    else:
        chunks.append(([p for p in parts if not p.get("thought")], usage["candidatesTokenCount"]))
    frames: list[bytes] = []
    for number, (chunk_parts, seen) in enumerate(chunks):
        last = number == len(chunks) - 1
        candidate: dict[str, Any] = {"content": {"parts": chunk_parts, "role": "model"}, "index": 0}
        partial = usage if last else {**usage, "candidatesTokenCount": seen,
                                      "totalTokenCount": usage["totalTokenCount"] - usage["candidatesTokenCount"]
                                      + seen}
        if last:
            candidate.update(finishReason=finish, **grounding)
        data = orjson.dumps({"candidates": [candidate], "usageMetadata": partial, "modelVersion": model,
                             "responseId": response_id})
        frames.append(sse_frame(data) if sse else (b"[" if number == 0 else b",\r\n") + data)
    if not sse:
        frames.append(b"]")
    paced = [True] * len(chunks) + ([] if sse else [False])
    cut_after = max(1, len(chunks) // 2) if call.cut else None
    if not sse:
        headers = {**headers, "content-type": "application/json; charset=UTF-8"}
    return EventStreamResponse(frames, paced, delay_s=call.state.config.stream_delay_ms / 1000.0,
                               cut_after=cut_after, headers=headers)


def _count_tokens(call: Call, model: str, stream: str | None) -> Response:
    """`{"totalTokens": N}` of `contents` or of a whole `generateContentRequest` (cache ignored)."""
    inner = field(call.body, "generateContentRequest")
    body = _obj(inner, "generate_content_request") if inner is not None else call.body
    total, _ = _prompt(body, _contents(body))
    return Response(orjson.dumps({"totalTokens": total,
                                  "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]}),
                    media_type=_JSON)


def _dimensions(model: str, request: Mapping[str, Any]) -> int:
    native = 3072 if "gemini-embedding" in model else 768
    wanted = field(request, "outputDimensionality")
    if wanted is None:
        return native
    if type(wanted) is not int or not 1 <= wanted <= native:
        raise InvalidRequest(f"Invalid value at 'output_dimensionality': expected an integer within [1, {native}].")
    return int(wanted)


def _embedding(model: str, request: Mapping[str, Any], where: str) -> tuple[list[float], int]:
    content = _obj(request.get("content"), f"{where}content")
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        raise InvalidRequest(f"* {where}content.parts: must not be empty.")
    texts = [text for p in parts if isinstance(p, Mapping) for text in _part_texts(p)[0]]
    key = "\x00".join(texts)
    return embedding_vector(model, key, _dimensions(model, request)), sum(count_tokens(t) for t in texts)


def _embed(call: Call, model: str, stream: str | None) -> Response:
    vector, tokens = _embedding(model, call.body, "")
    payload = {"embedding": {"values": vector},
               "usageMetadata": {"promptTokenCount": tokens, "totalTokenCount": tokens}}
    return CutResponse(orjson.dumps(payload)) if call.cut else Response(orjson.dumps(payload), media_type=_JSON)


def _batch_embed(call: Call, model: str, stream: str | None) -> Response:
    requests = call.body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise InvalidRequest("* BatchEmbedContentsRequest.requests: must not be empty.")
    embeddings: list[dict[str, Any]] = []
    tokens = 0
    for index, item in enumerate(requests):
        request = _obj(item, f"requests[{index}]")
        named = request.get("model")
        if named is not None and str(named).removeprefix("models/") != model:
            raise InvalidRequest(f"Invalid value at 'requests[{index}].model': the model must be models/{model}.")
        vector, count = _embedding(model, request, f"requests[{index}].")
        embeddings.append({"values": vector})
        tokens += count
    payload = {"embeddings": embeddings, "usageMetadata": {"promptTokenCount": tokens, "totalTokenCount": tokens}}
    return CutResponse(orjson.dumps(payload)) if call.cut else Response(orjson.dumps(payload), media_type=_JSON)


Handler = Callable[[Call, str, "str | None"], Response]
_METHODS: dict[str, tuple[Handler, bool]] = {  # method -> (handler, draws faults)
    "generateContent": (_generate, True),
    "streamGenerateContent": (_generate, True),
    "countTokens": (_count_tokens, False),
    "embedContent": (_embed, True),
    "batchEmbedContents": (_batch_embed, True),
}


def routes(state: SimulatorState) -> list[Route]:
    """The simulator's Gemini routes, under `/v1beta` and `/v1`."""
    run = _runner(state)
    return [Route("/v1beta/models/{target}", run, methods=["POST"]),
            Route("/v1/models/{target}", run, methods=["POST"])]


def _fault(fault: str | None, hang_s: float) -> Response | None:
    if fault is None or fault == "cut":
        return None
    if fault == "timeout":
        return HangResponse(hang_s, gemini_error(504, "Simulated upstream timeout."))
    status = fault_status(fault) or 500
    headers = {"retry-after": "1"} if status in (429, 503, 529) else None
    return gemini_error(status, f"Simulated upstream fault: HTTP {status}.", headers=headers)


def _runner(state: SimulatorState) -> Callable[[Request], Awaitable[Response]]:
    latency_s = state.config.latency_ms / 1000.0

    async def run(request: Request) -> Response:
        path: str = request.scope["path"]
        seq = state.next_request(path)
        model, _, method = str(request.path_params["target"]).partition(":")
        try:
            entry = _METHODS.get(method)
            if entry is None or not model:
                raise InvalidRequest(f"Method not found: models/{model}:{method}.", status=404)
            handler, draws = entry
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError:
                raise InvalidRequest("Invalid JSON payload received.") from None
            if not isinstance(body, dict):
                raise InvalidRequest("Invalid JSON payload received: expected an object.")
            fault = requested_fault(request.headers)
            if fault is None and draws:
                fault = state.draw_fault()
            if state.config.record_requests:
                query = {k: ("***" if k == "key" else v) for k, v in request.query_params.items()}
                state.record({"seq": seq, "method": request.method, "path": path, "query": query, "fault": fault,
                              "headers": {k: ("***" if k in _REDACTED else v) for k, v in request.headers.items()},
                              "body": body})
            if fault is not None:
                state.faults[fault] += 1
            response = _fault(fault, state.config.timeout_hang_s)
            if response is None:
                stream = None
                if method == "streamGenerateContent":
                    stream = "sse" if request.query_params.get("alt") == "sse" else "array"
                response = handler(Call(state, request, body, seq, fault, int(time.time())), model, stream)
        except InvalidRequest as exc:
            response = gemini_error(exc.status, exc.message)
        if latency_s > 0:
            await asyncio.sleep(latency_s)
        return response

    return run
