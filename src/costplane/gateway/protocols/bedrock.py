"""Amazon Bedrock Runtime: Converse, ConverseStream, and InvokeModel (plain and streamed) for
Anthropic models, governed like every other protocol.

* Routes: `POST /model/{modelId}/converse`, `/converse-stream`, `/invoke`,
  `/invoke-with-response-stream`; the model id is the path segment (URL-encoded by the AWS SDKs,
  an inference profile like `us.anthropic.…` or an ARN).
* Clients authenticate with their costplane key as a bearer token, as the AWS SDKs send a Bedrock
  API key (`AWS_BEARER_TOKEN_BEDROCK`; botocore sends it over HTTPS only).
* Upstream, the gateway forwards the provider's Bedrock API key as bearer (`api_key_env`) or signs
  the request with SigV4 from the provider's AWS credentials (`gateway.sigv4`).
* The output cap is `inferenceConfig.maxTokens` (Converse, set when absent) or `max_tokens`
  (InvokeModel's Anthropic body, required by the Messages format).
* Usage: Converse's `usage` and ConverseStream's `metadata` event (`inputTokens` excludes cache
  reads and writes); InvokeModel's Anthropic `usage` (plain, and `message_start`/`message_delta`
  inside the stream's base64 `chunk` events).
* Errors: `{"message": …}` with `x-amzn-ErrorType`, so the AWS SDKs raise the right error code; a
  stream cut upstream ends with a `modelStreamErrorException` event.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import orjson
import yarl

from costplane.config import GatewaySettings, ProviderConfig
from costplane.gateway.eventstream import EventStreamDecoder, EventStreamError, Message, encode_exception
from costplane.gateway.protocols.base import (
    AdapterRoute,
    CredentialSource,
    Enforced,
    ErrorReply,
    Incoming,
    ProtocolAdapter,
    RequestError,
    RequestFacts,
    StreamEvent,
    StreamMeter,
    UpstreamRequest,
    parse_json_object,
    read_credential,
)
from costplane.gateway.sigv4 import AwsCredentials, check_signed, parse_authorization, sign
from costplane.gateway.tokens import IMAGE_BOUND, InputSize, measure_anthropic
from costplane.gateway.upstream import UpstreamError
from costplane.gateway.validate import (
    MAX_OUTPUT_TOKENS,
    Any_,
    Arr,
    BodyError,
    Bool,
    Int,
    Map,
    Mismatch,
    Num,
    Obj,
    Spec,
    Str,
    check_body,
)
from costplane.gateway.validate_anthropic import MESSAGES_BODY
from costplane.pricing import genai
from costplane.pricing.readers import anthropic_usage, bedrock_usage
from costplane.pricing.types import TokenUsage

__all__ = ["ADAPTER", "CONVERSE_BODY", "ERROR_TYPES", "EVENT_STREAM", "INVOKE_BODY", "BedrockAdapter",
           "ConverseStreamMeter", "InvokeStreamMeter", "bedrock_error", "context_window", "measure_converse"]

EVENT_STREAM = "application/vnd.amazon.eventstream"
#: the Bedrock error type (`x-amzn-ErrorType`) of each status the gateway sends
ERROR_TYPES: Mapping[int, str] = {
    400: "ValidationException", 401: "UnrecognizedClientException", 402: "ServiceQuotaExceededException",
    403: "AccessDeniedException", 404: "ResourceNotFoundException", 405: "ValidationException",
    413: "ValidationException", 415: "ValidationException", 429: "ThrottlingException",
    502: "InternalServerException", 503: "ServiceUnavailableException", 504: "ModelTimeoutException",
}
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,2047}$")
_INFERENCE = {"temperature": "temperature", "top_p": "topP", "stop": "stopSequences"}
_REGION = re.compile(r"bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com")


class Union(Spec):
    """A Bedrock union: an object with exactly one member, among `members` (an unknown member is
    refused: a content block the gateway cannot size would be forwarded and metered blind)."""

    kinds = frozenset({"object"})

    def __init__(self, describe: str, members: Mapping[str, Spec]) -> None:
        self.describe = describe
        self.members = members

    def check(self, value: Any, depth: int) -> None:
        if type(value) is not dict:
            raise self.mismatch(value)
        if len(value) != 1:
            raise Mismatch(f"expected {self.describe} with exactly one of {', '.join(sorted(self.members))}, "
                           f"got {len(value)} members")
        ((name, element),) = value.items()
        spec = self.members.get(name)
        if spec is None:
            raise Mismatch(f"unknown member {name!r}; expected one of {', '.join(sorted(self.members))}", name)
        try:
            spec.check(element, depth + 1)
        except Mismatch as exc:
            exc.where.append(name)
            raise


_STR = Str()
_NAME = Str(nonempty=True)
_MAP = Map()
_CACHE_POINT = Obj({"type": Str(enum=frozenset({"default"})), "ttl": _STR}, required=("type",))
_MEDIA = Obj({"format": _STR, "source": _MAP}, required=("source",))
_DOCUMENT = Obj({"format": _STR, "name": _STR, "source": _MAP}, required=("source",))
_RESULT_PART = Union("a tool result block", {"text": _STR, "json": Any_(), "image": _MEDIA, "document": _DOCUMENT,
                                             "video": _MEDIA, "searchResult": _MAP})
_BLOCK = Union("a content block", {
    "text": _STR, "image": _MEDIA, "document": _DOCUMENT, "video": _MEDIA, "audio": _MEDIA,
    "toolUse": Obj({"toolUseId": _NAME, "name": _NAME, "input": Any_(), "type": _STR},
                   required=("toolUseId", "name", "input")),
    "toolResult": Obj({"toolUseId": _NAME, "content": Arr(_RESULT_PART), "status": Str(enum=frozenset({
        "success", "error"})), "type": _STR}, required=("toolUseId", "content")),
    "guardContent": _MAP, "cachePoint": _CACHE_POINT, "reasoningContent": _MAP, "citationsContent": _MAP,
    "searchResult": _MAP,
})
_TOOL = Union("a tool", {
    "toolSpec": Obj({"name": _NAME, "description": _STR, "inputSchema": Obj({"json": Any_()}, required=("json",)),
                     "strict": Bool()}, required=("name", "inputSchema")),
    "systemTool": _MAP, "cachePoint": _CACHE_POINT})
#: a Converse / ConverseStream body (the model is in the path); known fields typed, others forwarded
CONVERSE_BODY = Obj({
    "messages": Arr(Obj({"role": Str(enum=frozenset({"user", "assistant"})), "content": Arr(_BLOCK)},
                        required=("role", "content")), min_items=1),
    "system": Arr(Union("a system block", {"text": _NAME, "guardContent": _MAP, "cachePoint": _CACHE_POINT})),
    "inferenceConfig": Obj({"maxTokens": Int(1, MAX_OUTPUT_TOKENS), "temperature": Num(0.0, 1.0),
                            "topP": Num(0.0, 1.0), "stopSequences": Arr(_STR)}),
    "toolConfig": Obj({"tools": Arr(_TOOL, min_items=1),
                       "toolChoice": Union("a tool choice", {"auto": _MAP, "any": _MAP, "tool": Obj(
                           {"name": _NAME}, required=("name",))})}, required=("tools",)),
    "guardrailConfig": _MAP, "additionalModelRequestFields": _MAP, "promptVariables": _MAP,
    "additionalModelResponseFieldPaths": Arr(_STR), "requestMetadata": Map(_STR),
    "performanceConfig": Obj({"latency": Str(enum=frozenset({"standard", "optimized"}))}),
    "serviceTier": Obj({"type": Str(enum=frozenset({"default", "flex", "priority", "reserved"}))}),
}, required=("messages",))
#: InvokeModel's Anthropic Messages body: no `model` (it is in the path), `anthropic_version` required
INVOKE_BODY = Obj({**{k: v for k, v in MESSAGES_BODY.fields.items() if k not in ("model", "stream")},
                   "anthropic_version": Str(enum=frozenset({"bedrock-2023-05-31"})), "anthropic_beta": Arr(_STR)},
                  required=("anthropic_version", "messages", "max_tokens"))

_PER_MESSAGE = 8  # role markers and separators (real tokenizers use 3-4)
#: document formats whose embedded bytes bound their tokens (a byte-level tokenizer over plain text)
_TEXT_FORMATS = frozenset({"txt", "md", "csv", "html"})


def _part_bound(kind: str, value: Any) -> int | None:
    """Tokens one content block (or tool-result part) can cost at most, None when its size cannot be
    known from the request: its JSON bytes (never fewer than the UTF-8 bytes of its text), a fixed
    bound per image, the text of a plain-text document; a PDF or office document, a video, audio or
    anything read from S3 has no bound in the request."""
    if kind == "cachePoint":
        return 0
    if kind == "image":
        return IMAGE_BOUND
    if kind == "document":
        source = value.get("source") or {}
        if "text" in source or "content" in source:
            return len(orjson.dumps(source))
        if "bytes" in source and value.get("format") in _TEXT_FORMATS:
            return len(orjson.dumps(source["bytes"]))  # base64: longer than the bytes it encodes
        return None
    if kind in ("video", "audio"):
        return None
    if kind == "toolResult":
        total = len(orjson.dumps(value.get("toolUseId")))
        for part in value.get("content") or []:
            ((part_kind, part_value),) = part.items()
            bound = _part_bound(part_kind, part_value)
            if bound is None:
                return None
            total += bound
        return total
    return len(orjson.dumps(value))


def measure_converse(body: Mapping[str, Any], context_window: int | None = None) -> InputSize:
    """The worst-case input tokens of a valid Converse body (reserved) and an estimate (shown to
    policies). The input never exceeds the model's context window: a block whose size the request does
    not tell (a PDF, a video, an S3 object) is bounded by it, and refused (RequestError naming the
    block) when the window is unknown."""
    messages = body.get("messages") or []
    system = body.get("system") or []
    located = [(f"messages[{i}].content[{j}]", block) for i, message in enumerate(messages)
               for j, block in enumerate(message["content"])]
    located += [(f"system[{i}]", block) for i, block in enumerate(system)]
    text = 0
    unbounded: str | None = None
    for where, block in located:
        ((kind, value),) = block.items()
        bound = _part_bound(kind, value)
        if bound is None:
            unbounded = unbounded or f"{where}.{kind}"
        else:
            text += bound
    tools = len(orjson.dumps(body["toolConfig"])) if "toolConfig" in body else 0
    parts = len(messages) + (1 if system else 0)
    total = _PER_MESSAGE * (parts + 1) + text + tools
    if unbounded is not None:
        if context_window is None:
            raise RequestError(unbounded, f"{unbounded}: the tokens of this block cannot be bounded from the request "
                                          "and the model's context window is not in the price data")
        total = context_window
    bound = min(total, context_window) if context_window else total
    return InputSize(bound=bound, estimate=min(bound, -(-(text + tools) // 4) + 3 * parts + 3), messages=parts)


def context_window(model: str) -> int | None:
    """The model's context window from the price data (AWS Bedrock's entry), None when unknown."""
    found = genai.find_model(model, "aws")
    window = found[1].context_window if found is not None else None
    return window if isinstance(window, int) and window > 0 else None


def _refuse_system_tools(body: Mapping[str, Any]) -> None:
    for index, tool in enumerate((body.get("toolConfig") or {}).get("tools") or []):
        if "systemTool" in tool:
            raise RequestError(f"toolConfig.tools[{index}].systemTool",
                               f"toolConfig.tools[{index}].systemTool: system tools are billed per use at prices "
                               "the catalog does not have, so they cannot be metered")


#: service tiers and latency modes the price data has no price for: refused rather than metered at
#: the standard price (`flex` is charged at the standard price, an upper bound)
_UNPRICED_TIERS = frozenset({"priority", "reserved"})


def _check_priced(body: Mapping[str, Any], headers: Mapping[str, str], invoke: bool) -> None:
    if invoke:
        tier, tier_param = headers.get("x-amzn-bedrock-service-tier"), "x-amzn-bedrock-service-tier"
        latency = headers.get("x-amzn-bedrock-performanceconfig-latency")
        latency_param = "x-amzn-bedrock-performanceconfig-latency"
    else:
        tier, tier_param = (body.get("serviceTier") or {}).get("type"), "serviceTier.type"
        latency, latency_param = (body.get("performanceConfig") or {}).get("latency"), "performanceConfig.latency"
    # the service reads these values without regard to case (`Priority`, `Optimized`): so does the check
    if isinstance(tier, str) and tier.strip().lower() in _UNPRICED_TIERS:
        raise RequestError(tier_param, f"{tier_param}: the {tier!r} service tier has no price in the catalog, so "
                                       "it cannot be metered; use 'default' or 'flex'")
    if isinstance(latency, str) and latency.strip().lower() == "optimized":
        raise RequestError(latency_param, f"{latency_param}: latency-optimized inference has no price in the "
                                          "catalog, so it cannot be metered; use 'standard'")


def bedrock_error(status: int, message: str, code: str = "") -> ErrorReply:
    """`{"message": …}` and `x-amzn-errortype`, as Bedrock answers an error."""
    kind = "InvalidSignatureException" if code == "invalid_signature" else ERROR_TYPES.get(
        status, "InternalServerException" if status >= 500 else "ValidationException")
    return ErrorReply(orjson.dumps({"message": message}), headers={"x-amzn-errortype": kind})


def _region(provider: ProviderConfig) -> str:
    if provider.region:
        return provider.region
    found = _REGION.search(urlsplit(provider.base_url).netloc)
    return found.group(1) if found else "us-east-1"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


class ConverseStreamMeter(StreamMeter):
    """Meters a ConverseStream: usage from the `metadata` event, one delta per `contentBlockDelta`.
    Each message is relayed as the exact bytes the provider sent."""

    media_type = EVENT_STREAM

    def __init__(self) -> None:
        super().__init__()
        self._decoder = EventStreamDecoder()
        self._usage: TokenUsage | None = None

    @property
    def usage(self) -> TokenUsage | None:
        return self._usage

    def _decode(self, chunk: bytes) -> list[Message]:
        try:
            return self._decoder.feed(chunk)
        except EventStreamError as exc:
            raise UpstreamError("broken", f"upstream sent a malformed event stream: {exc}") from None

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for message in self._decode(chunk):
            final = False
            if message.message_type == "event":
                kind = message.event_type
                if kind == "contentBlockDelta":
                    self.deltas += 1
                elif kind == "metadata":
                    payload = message.json()
                    usage = bedrock_usage(payload.get("usage")) if isinstance(payload, dict) else None
                    if usage is not None:
                        self._usage = usage
                        self.done = final = True
            out.append((message.raw, final))
        return out

    def cost_note(self, cost_usd: str, decision_id: str) -> bytes:
        return b""  # the event stream has no comments, and an unknown event would break the SDKs' parsers


class InvokeStreamMeter(ConverseStreamMeter):
    """Meters InvokeModelWithResponseStream of an Anthropic model: each `chunk` event carries one
    Anthropic stream event (base64 JSON); usage from `message_start` and `message_delta`."""

    usage_counts_partial_output = True

    def __init__(self) -> None:
        super().__init__()
        self._start: dict[str, Any] = {}
        self._delta: dict[str, Any] = {}
        self._output = 0
        self.started = False

    @property
    def usage(self) -> TokenUsage | None:
        if not self.started:
            return None
        merged = {**self._start, **{k: v for k, v in self._delta.items() if v is not None}}
        merged["output_tokens"] = max(self._output, 0 if self.done else self.deltas)
        return anthropic_usage(merged)

    def _inner(self, message: Message) -> dict[str, Any] | None:
        payload = message.json()
        data = payload.get("bytes") if isinstance(payload, dict) else None
        if not isinstance(data, str):
            return None
        try:
            inner = orjson.loads(base64.b64decode(data, validate=True))
        except (binascii.Error, orjson.JSONDecodeError):
            return None
        return inner if isinstance(inner, dict) else None

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for message in self._decode(chunk):
            final = False
            inner = self._inner(message) if message.event_type == "chunk" else None
            kind = inner.get("type") if inner else None
            if inner is not None and kind == "message_start":
                start = inner.get("message") or {}
                self._start = dict(start.get("usage") or {}) if isinstance(start, dict) else {}
                self._output = _int(self._start.get("output_tokens"))
                self.response_id = start.get("id") if isinstance(start.get("id"), str) else None
                self.started = True
            elif inner is not None and kind == "message_delta":
                usage = inner.get("usage") or {}
                if isinstance(usage, dict):
                    self._output = max(self._output, _int(usage.get("output_tokens")))
                    self._delta.update(usage)
            elif kind == "content_block_delta":
                self.deltas += 1
            elif kind == "message_stop":
                self.done = final = True
            out.append((message.raw, final))
        return out


class BedrockAdapter(ProtocolAdapter):
    family = "bedrock"
    name = "bedrock"
    routes = (
        AdapterRoute("POST", "/model/{modelId:path}/converse", "converse"),
        AdapterRoute("POST", "/model/{modelId:path}/converse-stream", "converse-stream"),
        AdapterRoute("POST", "/model/{modelId:path}/invoke", "invoke"),
        AdapterRoute("POST", "/model/{modelId:path}/invoke-with-response-stream", "invoke-with-response-stream"),
    )
    credentials: tuple[CredentialSource, ...] = ("bearer",)
    path_prefixes = ("/model/",)
    pass_headers = ("accept", "x-amzn-bedrock-accept", "x-amzn-bedrock-guardrailidentifier",
                    "x-amzn-bedrock-guardrailversion", "x-amzn-bedrock-trace",
                    "x-amzn-bedrock-performanceconfig-latency", "x-amzn-bedrock-service-tier")

    def credential(self, incoming: Incoming) -> str | None:
        """The costplane key: a bearer token, or the access key id of a SigV4 signature made with the key
        as both access key id and secret (for clients that cannot send a bearer token over plain HTTP;
        `parse` checks the signature)."""
        found = read_credential(self.credentials, incoming)
        if found is None:
            signed = parse_authorization(incoming.headers.get("authorization", ""))
            found = signed.access_key_id if signed is not None else None
        return found

    def parse(self, route: AdapterRoute, incoming: Incoming, settings: GatewaySettings) -> RequestFacts:
        model = incoming.path_params.get("modelId", "")
        if not _MODEL_ID.match(model):
            raise RequestError("modelId", f"modelId: expected a Bedrock model id, inference profile or ARN "
                                          f"(letters, digits and . : / _ -), got {model[:80]!r}")
        signed = parse_authorization(incoming.headers.get("authorization", ""))
        if signed is not None:
            # the AWS SDKs escape the model id in the path (':' as %3A); the route saw it unescaped
            paths = (f"/model/{quote(model, safe='')}/{route.operation}", incoming.path)
            reason = check_signed(incoming.method, incoming.headers.get("host", ""), paths, urlencode(incoming.query),
                                  incoming.headers, incoming.body, signed.access_key_id)
            if reason is not None:
                raise RequestError("authorization", f"authorization: {reason} (sign with the costplane key as both "
                                                    "access key id and secret access key)", status=403,
                                   code="invalid_signature")
        body = parse_json_object(incoming.body)
        operation = route.operation
        invoke = operation.startswith("invoke")
        if invoke and "anthropic." not in model:
            raise RequestError("modelId", f"modelId: InvokeModel is governed for Anthropic models only (their "
                                          f"Messages body is metered); call Converse for {model[:80]!r}")
        try:
            check_body(INVOKE_BODY if invoke else CONVERSE_BODY, body)
        except BodyError as exc:
            raise RequestError(exc.param, str(exc)) from None
        if invoke:
            size = measure_anthropic(body)
            window = context_window(model)
            if window is not None and size.bound > window:  # the input never exceeds the context window
                size = InputSize(bound=window, estimate=min(size.estimate, window), messages=size.messages)
            max_tokens: int | None = body["max_tokens"]
            params: dict[str, Any] = {k: body[k] for k in ("temperature", "top_p") if k in body}
        else:
            _refuse_system_tools(body)
            size = measure_converse(body, context_window(model))
            config = body.get("inferenceConfig") or {}
            max_tokens = config.get("maxTokens")
            params = {name: config[field] for name, field in (("temperature", "temperature"), ("top_p", "topP"))
                      if field in config}
        _check_priced(body, incoming.headers, invoke)
        stream = operation.endswith("stream")
        return RequestFacts(operation=operation, endpoint="invoke" if invoke else "converse", model=model,
                            body=body, size=size, max_tokens=max_tokens, stream=stream, params=params,
                            cacheable=not stream and params.get("temperature") == 0,
                            path_params={"modelId": model})

    def build_upstream(self, facts: RequestFacts, enforced: Enforced, incoming: Incoming) -> UpstreamRequest:
        body = dict(facts.body)
        if facts.endpoint == "invoke":
            if "anthropic." not in enforced.model:
                raise RequestError("modelId", f"modelId: the request is routed to {enforced.model!r}, which does not "
                                              "take InvokeModel's Anthropic body; route it to an Anthropic model")
            body.update(enforced.mutations)
            body["max_tokens"] = enforced.max_tokens
        else:
            config = dict(body.get("inferenceConfig") or {})
            extra = dict(body.get("additionalModelRequestFields") or {})
            for name, value in enforced.mutations.items():
                if name in _INFERENCE:
                    config[_INFERENCE[name]] = value
                elif name not in ("max_tokens", "model"):
                    extra[name] = value  # model-specific: Bedrock refuses unknown top-level fields
            config["maxTokens"] = enforced.max_tokens
            body["inferenceConfig"] = config
            if extra:
                body["additionalModelRequestFields"] = extra
        # the URL exactly as it goes on the wire (what SigV4 signs): ':' stays, '/' of an ARN is escaped
        url = str(yarl.URL(f"{enforced.provider.base_url}/model/{quote(enforced.model, safe='')}/"
                           f"{facts.operation}"))
        headers = {"content-type": "application/json"}
        for name in self.pass_headers:
            value = incoming.headers.get(name)
            if value:
                headers[name] = value
        api_key = enforced.provider.api_key()
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        return UpstreamRequest("POST", url, headers, orjson.dumps(body))

    def sign(self, request: UpstreamRequest, provider: ProviderConfig) -> UpstreamRequest:
        """SigV4 with the provider's AWS credentials, unless a Bedrock API key already authorizes it."""
        if "authorization" in request.headers:
            return request
        found = provider.aws_credentials()
        if found is None:
            return request  # Bedrock refuses it (403), the reservation is released, nothing is charged
        key, secret, token = found
        added = sign(request.method, request.url, request.headers, request.body,
                     AwsCredentials(key, secret, token), region=_region(provider), service="bedrock")
        return UpstreamRequest(request.method, request.url, {**request.headers, **added}, request.body)

    def usage(self, facts: RequestFacts, payload: Any) -> TokenUsage | None:
        if not isinstance(payload, Mapping):
            return None
        read = anthropic_usage if facts.endpoint == "invoke" else bedrock_usage
        return read(payload.get("usage"))

    def stream_meter(self, facts: RequestFacts) -> StreamMeter:
        return InvokeStreamMeter() if facts.endpoint == "invoke" else ConverseStreamMeter()

    def error(self, status: int, code: str, message: str, param: str | None = None) -> ErrorReply:
        return bedrock_error(status, message, code)

    def stream_error(self, message: str, code: str) -> bytes:
        return encode_exception("modelStreamErrorException", message)


ADAPTER = BedrockAdapter()
