"""The Gemini API (Google AI): `models/{model}:generateContent`, `:streamGenerateContent`,
`:embedContent`, `:batchEmbedContents` governed, `:countTokens` passed through; under `/v1beta` and `/v1`.

The costplane key comes in `x-goog-api-key` (what `google-genai` sends), `?key=` or a bearer token,
and is never forwarded: the upstream request carries the provider's configured key. The model is
the path's; the gateway writes the enforced model back into the upstream path.

Output bound. The enforced output cap covers the answer and the model's thinking together. A
request asks for `maxOutputTokens` M (`gateway.default_max_tokens` when it sets none, and the
gateway then forwards that) plus, with an explicit `thinkingConfig.thinkingBudget` B > 0, B: the
bound is M + B. The gateway forwards `maxOutputTokens` = cap - B' and `thinkingBudget` = B'
(B' = B unless a policy cap leaves less room), so the two caps sent upstream never sum past the
reserved bound, whether the model counts thoughts inside `maxOutputTokens` (as Gemini does) or
beside it. Dynamic thinking (-1, no budget, a `thinkingLevel`) is bounded by `maxOutputTokens`
itself, which Gemini enforces on thoughts and answer together.

Input bound (`validate_gemini.measure_generate`). Text, function calls and results, tool
declarations: their UTF-8 bytes plus framing (`gateway.tokens`). An image part: `IMAGE_BOUND`.
What the request cannot bound — audio, video, documents, `fileData` of another kind, and the
results built-in tools (Google Search, code execution, URL context) feed back as
`toolUsePromptTokenCount` — is bounded by the largest Gemini context window, `CONTEXT_BOUND`. An
explicit context cache (`cachedContent`) is refused: its tokens are not in the request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from costplane.config import GatewaySettings, ProviderConfig
from costplane.gateway.protocols.base import (
    AdapterRoute,
    CredentialSource,
    Enforced,
    ErrorReply,
    Incoming,
    PassScope,
    ProtocolAdapter,
    RequestError,
    RequestFacts,
    SSEBuffer,
    StreamEvent,
    StreamMeter,
    UpstreamRequest,
    parse_json_object,
    sse_data,
)
from costplane.gateway.validate import BodyError, check_body
from costplane.gateway.validate_gemini import (
    BATCH_EMBED_BODY,
    EMBED_BODY,
    GENERATE_BODY,
    SEARCH_TOOLS,
    bills_per_query,
    builtin_tools,
    get,
    measure_embed,
    measure_generate,
    output_caps,
    snake,
    spelled_twice,
    thinking_budget,
)
from costplane.pricing.readers import gemini_usage, with_units
from costplane.pricing.types import TokenUsage

__all__ = ["ADAPTER", "GeminiAdapter", "GeminiStreamMeter", "gemini_error_body", "usage_of"]

#: The largest context window of a Gemini model: the bound of input a request cannot bound itself.
_METHODS = {"generate": "generateContent", "stream": "streamGenerateContent", "count_tokens": "countTokens",
            "embed": "embedContent", "batch_embed": "batchEmbedContents"}
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 402: "RESOURCE_EXHAUSTED", 403: "PERMISSION_DENIED",
           404: "NOT_FOUND", 405: "NOT_FOUND", 409: "ABORTED", 413: "INVALID_ARGUMENT", 415: "INVALID_ARGUMENT",
           429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE",
           503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
_CEL_PARAMS = {"temperature": "temperature", "topP": "top_p", "topK": "top_k", "seed": "seed"}
#: A model id as the path names it (`gemini-2.0-flash`, `gemini-2.5-pro-preview-05-06`): anything else
#: (`?`, `#`, `%`, `/`, spaces) could rewrite the upstream URL, which carries the provider's key.
#: Tuned models live under another collection (`tunedModels/…`), which this gateway does not serve.
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,255}")


def gemini_error_body(status: int, code: str, message: str, param: str | None = None) -> bytes:
    """Google's error shape; `details` carries the gateway's reason (and the field, for a bad request)."""
    details: list[dict[str, Any]] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": code,
                                      "domain": "costplane", "metadata": {"param": param} if param else {}}]
    if param and status == 400:
        details.append({"@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [{"field": param, "description": message}]})
    google = _STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    return orjson.dumps({"error": {"code": status, "message": message, "status": google, "details": details}})



def usage_of(model: str, payload: Any) -> TokenUsage | None:
    """Usage of one response body (or stream chunk): `usageMetadata`, plus Google Search grounding
    fees from the candidates' `groundingMetadata.webSearchQueries`."""
    if not isinstance(payload, Mapping):
        return None
    usage = gemini_usage(payload.get("usageMetadata"))
    queries = _search_queries(payload)
    extra: dict[str, int] = {}
    if queries:
        extra["web_searches"] = queries if bills_per_query(model) else 1
    if _maps_grounded(payload):
        extra["maps_searches"] = 1  # one fee per prompt grounded with Google Maps
    return with_units(usage, extra)


def _search_queries(payload: Mapping[str, Any]) -> int:
    total = 0
    for candidate in payload.get("candidates") or ():
        grounding = get(candidate, "groundingMetadata") if isinstance(candidate, Mapping) else None
        queries = get(grounding, "webSearchQueries") if isinstance(grounding, Mapping) else None
        total += len(queries) if isinstance(queries, list) else 0
    return total


def _maps_grounded(payload: Mapping[str, Any]) -> bool:
    for candidate in payload.get("candidates") or ():
        grounding = get(candidate, "groundingMetadata") if isinstance(candidate, Mapping) else None
        chunks = get(grounding, "groundingChunks") if isinstance(grounding, Mapping) else None
        if isinstance(chunks, list) and any(isinstance(c, Mapping) and c.get("maps") is not None for c in chunks):
            return True
    return False


def _output_parts(payload: Any) -> tuple[int, bool]:
    """(content parts, whether a candidate finished) of one stream chunk."""
    parts = 0
    finished = False
    for candidate in payload.get("candidates") or () if isinstance(payload, Mapping) else ():
        if not isinstance(candidate, Mapping):
            continue
        content = candidate.get("content")
        for part in get(content, "parts") or () if isinstance(content, Mapping) else ():
            if isinstance(part, Mapping) and (part.get("text") or get(part, "functionCall")):
                parts += 1
        finished = finished or get(candidate, "finishReason") is not None
    return parts, finished


class _ArraySplitter:
    """Splits the JSON-array stream (`streamGenerateContent` without `alt=sse`) into its elements."""

    def __init__(self) -> None:
        self._pending = b""
        self._depth = 0
        self._string = False
        self._escape = False
        self._start: int | None = None

    def feed(self, chunk: bytes) -> list[tuple[bytes, bytes | None]]:
        """(bytes to relay, the element that ends them or None) for what `chunk` completes."""
        out: list[tuple[bytes, bytes | None]] = []
        base = len(self._pending)
        self._pending += chunk
        cut = 0
        for offset, byte in enumerate(chunk):
            index = base + offset
            if self._string:
                if self._escape:
                    self._escape = False
                elif byte == 0x5C:
                    self._escape = True
                elif byte == 0x22:
                    self._string = False
            elif byte == 0x22:
                self._string = True
            elif byte in (0x7B, 0x5B):
                self._depth += 1
                if self._depth == 2 and byte == 0x7B:
                    self._start = index
            elif byte in (0x7D, 0x5D):
                self._depth -= 1
                if self._depth == 1 and self._start is not None:
                    out.append((self._pending[cut:index + 1], self._pending[self._start:index + 1]))
                    cut, self._start = index + 1, None
                elif self._depth == 0:
                    out.append((self._pending[cut:index + 1], None))
                    cut = index + 1
        if self._start is None and cut < len(self._pending) and self._depth <= 1:
            out.append((self._pending[cut:], None))  # separators: relay at once
            cut = len(self._pending)
        self._pending = self._pending[cut:]
        if self._start is not None:
            self._start -= cut
        return out


class _CrlfSafeSSE:
    """`SSEBuffer` that holds back a trailing CR, so a CRLF split across two chunks (Gemini frames
    its events with CRLF) is still one line end."""

    def __init__(self) -> None:
        self._inner = SSEBuffer()
        self._held = b""

    def events(self, chunk: bytes) -> list[bytes]:
        data, self._held = self._held + chunk, b""
        if data.endswith(b"\r"):
            data, self._held = data[:-1], b"\r"
        return self._inner.events(data)


class GeminiStreamMeter(StreamMeter):
    """Meters `streamGenerateContent`, SSE or JSON array. Every chunk carries the usage so far; the
    chunk with a `finishReason` carries the whole usage and is the final event."""

    usage_counts_partial_output = True

    def __init__(self, model: str, sse: bool) -> None:
        super().__init__()
        self.media_type = "text/event-stream" if sse else "application/json"
        self._model = model
        self._sse = _CrlfSafeSSE() if sse else None
        self._array = None if sse else _ArraySplitter()
        self._usage: TokenUsage | None = None

    @property
    def usage(self) -> TokenUsage | None:
        return self._usage

    def _seen(self, data: bytes) -> bool:
        """Record one chunk; True when it is the final one."""
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(payload, Mapping):
            return False
        usage = usage_of(self._model, payload)
        if usage is not None:
            self._usage = usage
        if self.response_id is None:
            self.response_id = _response_id(payload)
        parts, finished = _output_parts(payload)
        self.deltas += parts
        if finished and not self.done:
            self.done = True
            return True
        return False

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if self._sse is not None:
            for event in self._sse.events(chunk):
                data = sse_data(event)
                out.append((event + b"\n\n", data is not None and self._seen(data)))
            return out
        assert self._array is not None  # one of the two framings is always set
        for relay, element in self._array.feed(chunk):
            out.append((relay, element is not None and self._seen(element)))
        return out

    def charged(self, cut: bool, input_estimate: int) -> TokenUsage:
        """A cut stream: the last usage seen, with at least one output token per content part received."""
        usage = self._usage
        if usage is None:
            return TokenUsage(input_tokens=input_estimate, output_tokens=self.deltas)
        output = max(usage.output_tokens, usage.reasoning_tokens + self.deltas) if cut else usage.output_tokens
        if output == usage.output_tokens:
            return usage
        return TokenUsage(usage.input_tokens, output, usage.cache_read_tokens, usage.cache_write_tokens,
                          usage.reasoning_tokens, units=usage.units, conditions=usage.conditions)

    def cost_note(self, cost_usd: str, decision_id: str) -> bytes:
        # google-genai parses every non-`data:` line as JSON: an SSE comment would break it
        return b""


def _response_id(payload: Any) -> str | None:
    value = payload.get("responseId") if isinstance(payload, Mapping) else None
    return value if isinstance(value, str) and 0 < len(value) <= 256 else None


def _check(spec: Any, body: Mapping[str, Any]) -> None:
    try:
        check_body(spec, body)
    except BodyError as exc:
        raise RequestError(exc.param, str(exc)) from None


def path_model(incoming: Incoming) -> str:
    """The path's model id, checked: a 400 naming `model` unless it is a plain model id."""
    model = incoming.path_params.get("model", "")
    if not model.strip():
        raise RequestError("model", "model: the path names no model (models/{model}:method)")
    if _MODEL_ID.fullmatch(model) is None:
        raise RequestError("model", f"model: {model[:80]!r} is not a model id (letters, digits, '.', '_' and '-', "
                           "starting with a letter or digit, at most 256 characters)")
    return model


def _embed_models(requests: list[Any], model: str, batch: bool) -> None:
    """Each embedding request's own `model` must be the path's: the call is priced and routed by it."""
    for index, request in enumerate(requests):
        named = request.get("model") if isinstance(request, Mapping) else None
        if named is None:
            continue
        field = f"requests[{index}].model" if batch else "model"
        if named not in (model, f"models/{model}"):
            raise RequestError(field, f"{field}: {str(named)[:80]!r} differs from the model the path names "
                               f"(models/{model}); every request of the call must name the path's model")


def _no_twins(obj: Mapping[str, Any], where: str, *names: str) -> None:
    twin = spelled_twice(obj, *names)
    if twin is not None:
        field = f"{where}{twin}"
        raise RequestError(field, f"{field}: set under both {twin} and {snake(twin)}; send one")


class GeminiAdapter(ProtocolAdapter):
    family = "gemini"
    name = "gemini"
    routes = tuple(
        AdapterRoute("POST", f"/{version}/models/{{model}}:{method}", operation, governed=operation != "count_tokens")
        for version in ("v1beta", "v1") for operation, method in _METHODS.items())
    credentials: tuple[CredentialSource, ...] = ("x-goog-api-key", "query:key", "bearer")
    path_prefixes = ("/v1beta/", "/v1/")  # under the shared /v1/: for clients sending a Google header
    signature_headers = ("x-goog-api-key", "x-goog-api-client")

    def parse(self, route: AdapterRoute, incoming: Incoming, settings: GatewaySettings) -> RequestFacts:
        model = path_model(incoming)
        body = parse_json_object(incoming.body)
        operation = route.operation
        version = incoming.path.split("/", 2)[1] if incoming.path.count("/") >= 2 else "v1beta"
        framing = "sse" if incoming.query.get("alt") == "sse" else "array"
        path = {"model": model, "version": version, "framing": framing}
        if operation in ("embed", "batch_embed"):
            _check(EMBED_BODY if operation == "embed" else BATCH_EMBED_BODY, body)
            requests = [body] if operation == "embed" else list(body["requests"])
            _embed_models(requests, model, operation == "batch_embed")
            return RequestFacts(operation, "embeddings", model, body, measure_embed(requests), None, False,
                                cacheable=True, path_params=path)
        _no_twins(body, "", "generationConfig", "systemInstruction", "toolConfig", "cachedContent",
                  "safetySettings")
        _check(GENERATE_BODY, body)
        if get(body, "cachedContent") is not None:
            raise RequestError("cachedContent", "cachedContent: explicit context caches are not served by the "
                               "governed gateway (their tokens are not in the request, so no bound can be "
                               "reserved); send the contents instead")
        config = get(body, "generationConfig") or {}
        _no_twins(config, "generationConfig.", "maxOutputTokens", "thinkingConfig", "candidateCount", "topP",
                  "topK")
        _no_twins(get(config, "thinkingConfig") or {}, "generationConfig.thinkingConfig.", "thinkingBudget",
                  "includeThoughts", "thinkingLevel")
        client_max = get(config, "maxOutputTokens")
        budget = thinking_budget(body)
        asked = (client_max if client_max is not None else settings.default_max_tokens) + (budget or 0)
        params: dict[str, Any] = {cel: get(config, name) for name, cel in _CEL_PARAMS.items()
                                  if get(config, name) is not None}
        if budget is not None:
            params["thinking_budget"] = budget
        tool_uses: dict[str, int] = {}
        uncapped: dict[str, str] = {}
        for index, tool in builtin_tools(body):
            if tool in SEARCH_TOOLS:
                if bills_per_query(model):
                    uncapped.setdefault("web_searches", f"tools[{index}].{tool}")
                else:
                    tool_uses["web_searches"] = 1  # one fee per grounded prompt
            elif tool == "googleMaps":  # one fee per prompt grounded with Google Maps
                tool_uses["maps_searches"] = 1
                params["billed_units"] = ["maps_searches"]  # the unknown-price rule applies before the call
        stream = operation == "stream"
        cacheable = not stream and get(config, "temperature") == 0
        return RequestFacts(operation, "generate_content", model, body, measure_generate(body), asked, stream,
                            params=params, tool_uses=tool_uses, uncapped=uncapped, cacheable=cacheable,
                            path_params=path)

    def build_upstream(self, facts: RequestFacts, enforced: Enforced, incoming: Incoming) -> UpstreamRequest:
        body = dict(facts.body)
        if facts.operation in ("generate", "stream"):
            key = "generation_config" if "generation_config" in body else "generationConfig"
            config = dict(get(body, "generationConfig") or {})
            limit, budget = output_caps(thinking_budget(body), enforced.max_tokens)
            config["max_output_tokens" if "max_output_tokens" in config else "maxOutputTokens"] = limit
            if budget is not None:
                tkey = "thinking_config" if "thinking_config" in config else "thinkingConfig"
                thinking = dict(get(config, "thinkingConfig") or {})
                thinking["thinking_budget" if "thinking_budget" in thinking else "thinkingBudget"] = budget
                config[tkey] = thinking
            for name, value in enforced.mutations.items():
                camel = next((c for c, s in _CEL_PARAMS.items() if name in (c, s)), None)
                if camel is not None:
                    config[camel if camel in config or snake(camel) not in config else snake(camel)] = value
                else:
                    body[name] = value
            body[key] = config
        elif facts.operation == "batch_embed":
            body["requests"] = [{**r, "model": f"models/{enforced.model}"} for r in body["requests"]]
        elif "model" in body:
            body["model"] = f"models/{enforced.model}"
        return self._request(enforced.provider, facts.path_params, enforced.model, facts.operation, body)

    def _request(self, provider: ProviderConfig, path: Mapping[str, str], model: str, operation: str,
                 body: Mapping[str, Any]) -> UpstreamRequest:
        version = path.get("version") or "v1beta"
        url = f"{provider.base_url.rstrip('/')}/{version}/models/{quote(model, safe='')}:{_METHODS[operation]}"
        if operation == "stream" and path.get("framing") == "sse":
            url += "?alt=sse"
        headers = {"content-type": "application/json", "x-goog-api-key": provider.api_key() or "costplane"}
        return UpstreamRequest("POST", url, headers, orjson.dumps(body))

    def passthrough(self, route: AdapterRoute, incoming: Incoming, scope: PassScope) -> UpstreamRequest:
        """countTokens: forwarded to the provider serving the model, with the provider's key."""
        model = path_model(incoming)
        body = parse_json_object(incoming.body)
        for provider in scope.providers:
            if provider.protocol == self.family:
                served = provider.resolve(model)
                if served is not None:
                    version = incoming.path.split("/", 2)[1]
                    return self._request(provider, {"version": version}, served, route.operation, body)
        raise RequestError("model", f"model: no configured gemini provider serves {model!r}", status=404,
                           code="model_not_found")

    def usage(self, facts: RequestFacts, payload: Any) -> TokenUsage | None:
        return usage_of(facts.model, payload)

    def response_id(self, payload: Any) -> str | None:
        return _response_id(payload)

    def stream_meter(self, facts: RequestFacts) -> StreamMeter:
        return GeminiStreamMeter(facts.model, facts.path_params.get("framing") == "sse")

    def error(self, status: int, code: str, message: str, param: str | None = None) -> ErrorReply:
        return ErrorReply(gemini_error_body(status, code, message, param))

    def stream_error(self, message: str, code: str) -> bytes:
        return b"data: " + gemini_error_body(502, code, message) + b"\n\n"


ADAPTER = GeminiAdapter()
