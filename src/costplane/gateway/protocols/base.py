"""The protocol-adapter interface: everything the gateway knows about one wire protocol.

Design
------
The governed call is the same for every protocol: authenticate, parse, admit, forward, meter,
settle. What differs between OpenAI Chat, Responses, Anthropic Messages, Gemini, Bedrock or Azure
is only *the wire*: which routes, where the credential and the model are, how a body is validated
and bounded, where the enforced model and output cap are written, how the upstream URL is built
(and signed), where usage is in a plain body and in a stream, and what an error looks like. A
`ProtocolAdapter` answers exactly these questions and nothing else; it does no I/O, holds no
state between requests, and never sees the decision core. The gateway (`gateway.proxy`), the
SDK's instrumentation (`sdk.calls`) and the conformance suite call the same adapters.

The life of one governed call, as the proxy drives it::

    incoming = Incoming(method, path, path_params, query, headers, body)
    secret   = adapter.credential(incoming)                  # bearer, x-api-key, api-key, ?key=, …
    facts    = adapter.parse(route, incoming, settings)      # RequestFacts, or raises RequestError
    …  DecisionCore.admit(ctx, LlmRequest(family, facts.endpoint, facts.model, …))  …
    upstream = adapter.build_upstream(facts, Enforced(...), incoming)   # method, URL, headers, body
    upstream = adapter.sign(upstream, provider)              # SigV4 and the like; identity by default
    plain:   adapter.usage(facts, payload), adapter.response_id(payload)
    stream:  meter = adapter.stream_meter(facts); meter.feed(chunk) -> [(bytes, final)], meter.usage …
    errors:  adapter.error(status, code, message, param) ; adapter.stream_error(message, code)

Families. Each adapter belongs to one protocol *family* (`openai`, `anthropic`, `azure-openai`,
`gemini`, `bedrock`): the family is `LlmRequest.protocol` and selects the providers that may
serve the call (`ProviderConfig.protocol`, from its `type:`; see `config.FAMILY_OF_TYPE`). OpenAI
Chat, Embeddings and Responses are three adapters of the one `openai` family.

Adding a protocol = one module under `gateway/protocols/` exposing `ADAPTER` (an instance of a
`ProtocolAdapter` subclass) and one line in `protocols.ADAPTER_MODULES`; the routes, unknown-path
errors and the conformance suite follow from the registry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from costplane.config import GatewaySettings, ProviderConfig
from costplane.gateway.tokens import InputSize
from costplane.pricing.types import TokenUsage

__all__ = [
    "CREDENTIAL_SOURCES",
    "AdapterRoute",
    "CredentialSource",
    "Enforced",
    "ErrorReply",
    "Incoming",
    "PassScope",
    "ProtocolAdapter",
    "RecordedResponse",
    "RequestError",
    "RequestFacts",
    "ResponseLookup",
    "SSEBuffer",
    "StreamEvent",
    "StreamMeter",
    "UpstreamRequest",
    "parse_json_object",
    "read_credential",
    "sse_data",
]

#: Where a client may put its costplane key. `query:key` is the `?key=` query parameter (Gemini).
CredentialSource = Literal["bearer", "x-api-key", "api-key", "x-goog-api-key", "query:key"]
CREDENTIAL_SOURCES: tuple[CredentialSource, ...] = ("bearer", "x-api-key", "api-key", "x-goog-api-key", "query:key")

Method = Literal["GET", "POST", "DELETE"]


@dataclass(frozen=True, slots=True)
class AdapterRoute:
    """One route an adapter serves.

    `path` is a Starlette path template (`/v1beta/models/{model}:generateContent`,
    `/model/{modelId:path}/converse`); `operation` is the adapter's own name for what the route
    does and is handed back to `parse`/`passthrough`. A governed route is admitted, metered and
    settled; an ungoverned one (`GET /v1/responses/{id}`, token counting) is authenticated and
    forwarded through `ProtocolAdapter.passthrough`, never charged.
    """

    method: Method
    path: str
    operation: str
    governed: bool = True


@dataclass(frozen=True, slots=True)
class Incoming:
    """The client's request as the adapter sees it (header names lower-case)."""

    method: str
    path: str
    path_params: Mapping[str, str]
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes


class RequestError(Exception):
    """A request the gateway refuses before admission; `param` names the field (body field,
    header, path or query parameter). Becomes `adapter.error(status, code, message, param)`."""

    def __init__(self, param: str | None, message: str, *, status: int = 400, code: str = "invalid_request") -> None:
        self.param = param
        self.message = message
        self.status = status
        self.code = code
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What a valid request says, in the decision core's terms (see `LlmRequest`).

    `body` is the adapter's own parsed body (JSON object), already carrying any caps the adapter
    adds (Anthropic server tools' `max_uses`); `build_upstream` starts from it. `model` is where the
    protocol puts it (body, path, deployment). `continues` names a stored response this request
    extends (Responses `previous_response_id`): the gateway adds that chain's recorded tokens (or
    the model's context window when it has no record) to the input bound.
    """

    operation: str
    endpoint: str  # LlmRequest.endpoint: chat.completions | embeddings | messages | responses | …
    model: str
    body: Mapping[str, Any]
    size: InputSize  # bound (reserved) and estimate (shown to policies) of the input tokens
    max_tokens: int | None  # the client's output cap, None if it set none
    stream: bool
    params: Mapping[str, Any] = field(default_factory=dict)  # facts for CEL (temperature, service_tier, …)
    tool_uses: Mapping[str, int] = field(default_factory=dict)  # most per-call uses of each billed unit
    uncapped: Mapping[str, str] = field(default_factory=dict)  # billed units enabled with no cap, by field
    cacheable: bool = False  # deterministic: the exact-response cache may answer it
    continues: str | None = None
    #: input tokens added for `continues` when the gateway has no record of it (e.g. the model's
    #: context window); None: such a request is refused (400 naming `continues_param`)
    continues_unseen_bound: int | None = None
    continues_param: str = "previous_response_id"
    path_params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Enforced:
    """What admission decided, to be written into the upstream request."""

    provider: ProviderConfig
    model: str  # the model to call (routed / aliased / the deployment's model)
    max_tokens: int  # the enforced output cap (0 where the operation has none, e.g. embeddings)
    mutations: Mapping[str, Any]  # body parameters a policy sets (the gateway's own already removed)


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """The protocol's own error: body bytes, content type and any protocol headers
    (e.g. Bedrock's `x-amzn-errortype`). The gateway adds its `x-costplane-*` headers."""

    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordedResponse:
    """A response the gateway metered: who asked for it and how many tokens its call used."""

    key_id: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int


class ResponseLookup(ABC):
    """The gateway's record of responses by the provider's response id (runs on a store thread)."""

    @abstractmethod
    def find(self, response_id: str) -> RecordedResponse | None: ...


@dataclass(frozen=True, slots=True)
class PassScope:
    """What an ungoverned route may consult: the caller's key, the providers, the response record."""

    key_id: str
    providers: Sequence[ProviderConfig]
    lookup: ResponseLookup | None


#: One event to relay to the client and whether it is the stream's final event (the gateway
#: settles just before relaying it, so the cost can be announced in-stream).
StreamEvent = tuple[bytes, bool]


class StreamMeter(ABC):
    """Meters one streamed response while relaying it.

    `feed` receives upstream bytes as they arrive (any chunking) and returns the complete events
    to relay, in order. The meter may hold back events the gateway asked for on the client's behalf
    (OpenAI's usage-only chunk). `usage` is the final usage once seen; `deltas` counts content
    events (what a cut stream is charged for); `done` is True once the stream reported completion.
    """

    media_type = "text/event-stream"
    #: True when `usage` before completion already counts the output received so far
    #: (Anthropic's message_start + deltas); False when only the final event has usage.
    usage_counts_partial_output = False

    def __init__(self) -> None:
        self.response_id: str | None = None
        self.deltas = 0
        self.done = False

    @abstractmethod
    def feed(self, chunk: bytes) -> list[StreamEvent]: ...

    @property
    @abstractmethod
    def usage(self) -> TokenUsage | None: ...

    def charged(self, cut: bool, input_estimate: int) -> TokenUsage:
        """The usage to settle. A stream cut before its final usage is charged for what was seen:
        the whole prompt (it was read) and one token per content delta received."""
        usage = self.usage
        if usage is None or (cut and not self.usage_counts_partial_output):
            return TokenUsage(input_tokens=input_estimate, output_tokens=self.deltas)
        return usage

    def cost_note(self, cost_usd: str, decision_id: str) -> bytes:
        """An in-stream note of the settled cost, sent just before the final event (an SSE
        comment; b"" where the framing has no comments, e.g. Bedrock's event stream)."""
        return f": x-costplane-cost-usd={cost_usd} decision={decision_id}\n\n".encode()


class ProtocolAdapter(ABC):
    """One wire protocol (or one operation family of it). Instances are stateless and shared."""

    #: the protocol family (`LlmRequest.protocol`, `ProviderConfig.protocol`)
    family: str
    #: short name, unique in the registry (`openai-chat`, `azure-openai`, `gemini`, …)
    name: str
    routes: tuple[AdapterRoute, ...]
    #: where the client may put its costplane key, in order of precedence
    credentials: tuple[CredentialSource, ...] = ("bearer",)
    #: path prefixes of this family: an unknown path under one answers in this adapter's error shape
    path_prefixes: tuple[str, ...] = ()
    #: request headers that mark a client of this protocol where prefixes are shared (`/v1/`)
    signature_headers: tuple[str, ...] = ()
    #: request headers passed through to the upstream unchanged
    pass_headers: tuple[str, ...] = ()

    def credential(self, incoming: Incoming) -> str | None:
        return read_credential(self.credentials, incoming)

    @abstractmethod
    def parse(self, route: AdapterRoute, incoming: Incoming, settings: GatewaySettings) -> RequestFacts:
        """Validate the request of a governed route; raises RequestError naming the field.
        `settings`: the gateway's (e.g. `default_max_tool_uses`, the cap set on per-use tools)."""

    @abstractmethod
    def build_upstream(self, facts: RequestFacts, enforced: Enforced, incoming: Incoming) -> UpstreamRequest:
        """The request to send upstream: the enforced model, output cap and mutations written where
        the protocol keeps them, the provider's URL (model in the path where the protocol puts it)
        and credential headers, and the pass-through headers of the client."""

    def sign(self, request: UpstreamRequest, provider: ProviderConfig) -> UpstreamRequest:
        """Called last, on the request about to be sent (SigV4 for Bedrock); unchanged by default."""
        return request

    @abstractmethod
    def usage(self, facts: RequestFacts, payload: Any) -> TokenUsage | None:
        """Usage of a plain (non-streamed) response body, parsed JSON; None when it reports none."""

    def measure(self, body: Mapping[str, Any]) -> InputSize:
        """The input bound of a body as an SDK passes it (keyword arguments, unvalidated); used by
        `costplane.instrument` for clients it wraps. Adapters the SDK does not wrap need not answer."""
        raise NotImplementedError(f"{self.name}: the SDK does not instrument this protocol")

    def response_id(self, payload: Any) -> str | None:
        """The provider's id of a plain response (the key that links the client's own telemetry)."""
        value = payload.get("id") if isinstance(payload, Mapping) else None
        return value if isinstance(value, str) and 0 < len(value) <= 256 else None

    @abstractmethod
    def stream_meter(self, facts: RequestFacts) -> StreamMeter:
        """A fresh meter for one streamed response to `facts`."""

    @abstractmethod
    def error(self, status: int, code: str, message: str, param: str | None = None) -> ErrorReply:
        """The protocol's error body for any status the gateway sends (400, 401, 402, 403, 404,
        405, 413, 415, 429, 502, 503, 504)."""

    @abstractmethod
    def stream_error(self, message: str, code: str) -> bytes:
        """The in-stream error event sent when the upstream stream is cut."""

    def passthrough(self, route: AdapterRoute, incoming: Incoming, scope: PassScope) -> UpstreamRequest:
        """The upstream request of an ungoverned route (never charged), called on a store thread (it
        may use `scope.lookup`). Adapters with such routes override it; raises RequestError (404 when
        the key may not see the object or no provider serves it)."""
        raise RequestError(None, f"{incoming.method} {incoming.path} is not forwarded", status=404,
                           code="unknown_path")


def read_credential(sources: Sequence[CredentialSource], incoming: Incoming) -> str | None:
    """The first credential found in `sources`, or None."""
    for source in sources:
        if source == "bearer":
            auth = incoming.headers.get("authorization", "")
            if auth[:7].lower() == "bearer " and auth[7:].strip():
                return auth[7:].strip()
        elif source == "query:key":
            value = incoming.query.get("key")
            if value:
                return value
        else:
            value = incoming.headers.get(source)
            if value:
                return value.strip()
    return None


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or RequestError naming `body`."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestError("body", f"body: the request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise RequestError("body", "body: the request body must be a JSON object", code="invalid_body")
    return body


class SSEBuffer:
    """Splits a server-sent-event byte stream into complete events, whatever the chunking."""

    def __init__(self) -> None:
        self._buffer = b""

    def events(self, chunk: bytes) -> list[bytes]:
        """Complete events (without their blank-line terminator) found so far."""
        # a CRLF split across two chunks is joined before it is normalised
        self._buffer = (self._buffer + chunk).replace(b"\r\n", b"\n")
        *complete, self._buffer = self._buffer.split(b"\n\n")
        return [event for event in complete if event.strip()]

    @property
    def pending(self) -> bytes:
        return self._buffer


def sse_data(event: bytes) -> bytes | None:
    """The data of one SSE event (its `data:` lines joined), or None when it has none."""
    lines = [line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines) if lines else None
