"""The OpenAI Responses API: `POST /v1/responses` governed, plain and streamed; `GET`, `DELETE
/v1/responses/{id}`, `POST /v1/responses/{id}/cancel` and `GET /v1/responses/{id}/input_items`
forwarded under key scoping.

* Validation: `validate_responses.RESPONSES_BODY` (every field named on error).
* Input bound: the UTF-8 bytes of `instructions`, every input item, the tools' and the text format's
  JSON, with the per-message overhead per item (`tokens.measure_openai_chat`'s rule). A request that
  continues stored context (`previous_response_id`, `conversation`, a stored `prompt`) names it in
  `RequestFacts.continues`: the gateway adds the input and output tokens it recorded for that
  response under the same key, or else the model's context window from the price data
  (`continues_unseen_bound`; a model without one cannot continue unseen context: refused).
* Output cap: `max_output_tokens`; the gateway writes the enforced cap there (set when absent).
* Built-in tools billed per call (`web_search*`, `file_search`, `code_interpreter`,
  `image_generation`; the last two unpriced in the shipped data, so the unknown-price rule applies
  unless an override prices `code_executions` / `image_generations`): `max_tool_calls` caps every
  built-in tool call of a response, so the bound counts that many calls of each enabled unit; when
  the client sets none, the gateway sets `gateway.default_max_tool_uses` and forwards it.
* Usage: the response's `usage` (input incl. cached, output incl. reasoning) and its
  `web_search_call` / `file_search_call` / `code_interpreter_call` / `image_generation_call` items,
  from the plain body or the stream's final event
  (`response.completed`, `response.incomplete` or `response.failed`).
* Scoping: a key may only read, cancel or delete a response the gateway recorded under that key;
  anything else is a 404 in OpenAI's error format (the same answer as an id that does not exist).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

import orjson

from costplane.config import GatewaySettings, ProviderConfig
from costplane.gateway.protocols.base import (
    AdapterRoute,
    Enforced,
    Incoming,
    PassScope,
    RecordedResponse,
    RequestError,
    RequestFacts,
    ResponseLookup,
    SSEBuffer,
    StreamEvent,
    StreamMeter,
    UpstreamRequest,
    parse_json_object,
    sse_data,
)
from costplane.gateway.protocols.openai_wire import OpenAIWire, common_params, write_enforced
from costplane.gateway.tokens import InputSize, measure_openai_chat
from costplane.gateway.upstream import UpstreamError, UpstreamTransport
from costplane.gateway.validate import BodyError, check_body
from costplane.gateway.validate_responses import RESPONSES_BODY
from costplane.ledger.contracts_records import CostEventLog
from costplane.pricing import genai
from costplane.pricing.readers import openai_response_units, openai_usage, request_units
from costplane.pricing.types import TokenUsage

__all__ = [
    "ADAPTER",
    "FINAL_EVENTS",
    "PENDING_STATUSES",
    "TERMINAL_STATUSES",
    "BackgroundResponses",
    "HeldResponse",
    "OpenAIResponsesAdapter",
    "ResponsesStreamMeter",
    "StoreResponseLookup",
    "context_window",
    "measure_responses",
    "responses_usage",
    "tool_call_caps",
]

#: the stream events that end a response (each carries the whole response with its usage)
FINAL_EVENTS = frozenset({b"response.completed", b"response.incomplete", b"response.failed"})
#: statuses of a response that will not change any more
TERMINAL_STATUSES = frozenset({"completed", "incomplete", "failed", "cancelled"})
_DELTA_EVENTS = frozenset({"response.output_text.delta", "response.refusal.delta",
                           "response.function_call_arguments.delta", "response.reasoning_text.delta",
                           "response.reasoning_summary_text.delta", "response.custom_tool_call_input.delta",
                           "response.mcp_call_arguments.delta", "response.code_interpreter_call_code.delta"})
_PER_CALL_ITEMS = {"web_search_call": "web_searches", "file_search_call": "storage_searches",
                   "code_interpreter_call": "code_executions", "image_generation_call": "image_generations"}


def _prompt_items(body: Mapping[str, Any]) -> list[Any]:
    """What the model reads as messages: the instructions, then every input item."""
    value = body.get("input")
    items: list[Any] = [] if value is None else list(value) if isinstance(value, list) else [{"content": value}]
    instructions = body.get("instructions")
    if instructions:
        items.insert(0, {"content": instructions})
    return items


def measure_responses(body: Mapping[str, Any]) -> InputSize:
    """The provable bound and the estimate of the input tokens this body itself carries (without
    any stored context it continues)."""
    chat_like: dict[str, Any] = {"messages": _prompt_items(body)}
    if body.get("tools"):
        chat_like["tools"] = body["tools"]
    text = body.get("text")
    if isinstance(text, Mapping) and text.get("format") is not None:
        chat_like["response_format"] = text["format"]
    return measure_openai_chat(chat_like)


def tool_call_caps(body: dict[str, Any], default_max_calls: int) -> dict[str, int]:
    """The most calls of each per-call unit the request's built-in tools can make. Sets
    `max_tool_calls` (in `body`, which is forwarded) when the request enables such a tool and has
    none, so the provider can never make more calls than the bound counts."""
    units = request_units(body)
    if not units:
        return {}
    cap = body.get("max_tool_calls")
    if cap is None:
        cap = body["max_tool_calls"] = default_max_calls
    return {unit: int(cap) for unit in sorted(units) if cap}


def responses_usage(payload: Any) -> TokenUsage | None:
    """Usage of a Responses API response object: tokens, per-call tool items and the served tier."""
    if not isinstance(payload, Mapping):
        return None
    return openai_usage(payload.get("usage"), payload)


def context_window(model: str) -> int | None:
    """The model's context window from the price data (OpenAI's entry first), None when unknown."""
    found = genai.find_model(model, "openai") or genai.find_model(model, None)
    window = found[1].context_window if found is not None else None
    return window if isinstance(window, int) and window > 0 else None


def _continues(body: Mapping[str, Any]) -> str | None:
    """The stored context this request extends: a response id, or a conversation or stored prompt
    (never recorded by the gateway, so bounded by the model's context window)."""
    previous = body.get("previous_response_id")
    if isinstance(previous, str):
        return previous
    for name in ("conversation", "prompt"):
        value = body.get(name)
        ident = value.get("id") if isinstance(value, Mapping) else value
        if isinstance(ident, str):
            return f"{name}:{ident}"
    return None


class ResponsesStreamMeter(StreamMeter):
    """Meters the Responses API's typed event stream. The response id comes from
    `response.created`; usage from the final event's response; a cut stream is charged the prompt
    estimate, one token per delta received and every built-in tool call already finished."""

    def __init__(self) -> None:
        super().__init__()
        self._sse = SSEBuffer()
        self._usage: TokenUsage | None = None
        self._calls: dict[str, int] = {}  # per-call tool items seen finished (for a cut stream)
        self.status: str | None = None

    @property
    def usage(self) -> TokenUsage | None:
        return self._usage

    def charged(self, cut: bool, input_estimate: int) -> TokenUsage:
        usage = super().charged(cut, input_estimate)
        if self._usage is not None or not self._calls:
            return usage
        return TokenUsage(usage.input_tokens, usage.output_tokens, units=tuple(sorted(self._calls.items())))

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in self._sse.events(chunk):
            out.append((event + b"\n\n", self._read(event)))
        return out

    def _read(self, event: bytes) -> bool:
        """Record what one event says; True for the final event."""
        data = sse_data(event)
        if data is None:
            return False
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(payload, dict):
            return False
        kind = payload.get("type")
        if kind in _DELTA_EVENTS:
            self.deltas += 1
            return False
        response = payload.get("response")
        if kind == "response.created" and self.response_id is None:
            self.response_id = self._id(response)
        elif kind == "response.output_item.done":
            item = payload.get("item")
            unit = _PER_CALL_ITEMS.get(str(item.get("type"))) if isinstance(item, Mapping) else None
            if unit is not None:
                self._calls[unit] = self._calls.get(unit, 0) + 1
        elif isinstance(kind, str) and kind.encode() in FINAL_EVENTS:
            self.done = True
            self.response_id = self.response_id or self._id(response)
            if isinstance(response, Mapping):
                self.status = response.get("status") if isinstance(response.get("status"), str) else None
                self._usage = responses_usage(response)
                if self._usage is None and openai_response_units(response):
                    self._calls = openai_response_units(response)
            return True
        return False

    @staticmethod
    def _id(response: Any) -> str | None:
        value = response.get("id") if isinstance(response, Mapping) else None
        return value if isinstance(value, str) and 0 < len(value) <= 256 else None


#: cost event statuses whose token counts are what the provider reported (or the bound it was
#: charged): a continuation of their response adds them. A cut stream's counts are an estimate.
_RECORDED_EXACTLY = frozenset({"ok", "estimated", "unpriced", "over_bound"})


class StoreResponseLookup(ResponseLookup):
    """The responses the gateway metered, read from their cost events by the provider's response id
    (runs on a store thread). A response whose event does not hold its full usage (a cut stream) is
    treated as unseen."""

    def __init__(self, events: CostEventLog) -> None:
        self._events = events

    def find(self, response_id: str) -> RecordedResponse | None:
        event = self._events.find_gateway_event(response_id, None, ())
        if event is None or event.status not in _RECORDED_EXACTLY or event.context.key_id is None:
            return None
        return RecordedResponse(event.context.key_id, event.provider, event.model, event.usage.input_tokens,
                                event.usage.output_tokens)


class OpenAIResponsesAdapter(OpenAIWire):
    name = "openai-responses"
    routes = (
        AdapterRoute("POST", "/v1/responses", "create"),
        AdapterRoute("POST", "/v1/responses/compact", "compact"),
        AdapterRoute("POST", "/v1/responses/input_tokens", "count", governed=False),
        AdapterRoute("GET", "/v1/responses/{response_id}", "retrieve", governed=False),
        AdapterRoute("DELETE", "/v1/responses/{response_id}", "delete", governed=False),
        AdapterRoute("POST", "/v1/responses/{response_id}/cancel", "cancel", governed=False),
        AdapterRoute("GET", "/v1/responses/{response_id}/input_items", "input_items", governed=False),
    )

    def parse(self, route: AdapterRoute, incoming: Incoming, settings: GatewaySettings) -> RequestFacts:
        body = parse_json_object(incoming.body)
        try:
            check_body(RESPONSES_BODY, body)
        except BodyError as exc:
            raise RequestError(exc.param, str(exc)) from None
        stream = body.get("stream") is True
        if body.get("stream_options") is not None and not stream:
            raise RequestError("stream_options", "stream_options: only allowed when 'stream' is true")
        if body.get("background") is True and body.get("store") is False:
            raise RequestError("store", "store: a background response must be stored (store true or unset)")
        if body.get("input") is None and _continues(body) is None:
            raise RequestError("input", "input: this field is required unless the request continues a stored "
                                        "response, conversation or prompt")
        continues = _continues(body)
        if route.operation == "compact":
            return self._compact(route, body, continues)
        tool_uses = tool_call_caps(body, settings.default_max_tool_uses)
        deterministic = body.get("temperature") == 0 and not stream and body.get("background") is not True
        return RequestFacts(
            operation=route.operation, endpoint="responses", model=body["model"], body=body,
            size=measure_responses(body), max_tokens=body.get("max_output_tokens"), stream=stream,
            params=common_params(body), tool_uses=tool_uses, cacheable=deterministic, continues=continues,
            continues_unseen_bound=context_window(body["model"]) if continues else None,
            continues_param=continues.split(":", 1)[0] if continues and ":" in continues else "previous_response_id",
        )

    def _compact(self, route: AdapterRoute, body: dict[str, Any], continues: str | None) -> RequestFacts:
        """A compaction has no output cap the gateway could set: its output is bounded by the model's
        context window, and a model without a known one is refused."""
        for name in ("stream", "background"):
            if body.get(name) is True:
                raise RequestError(name, f"{name}: not supported by /v1/responses/compact")
        model = body["model"]
        window = context_window(model)
        if window is None:
            raise RequestError("model", f"model: no known context window for {model!r}, so the output of a "
                                        "compaction (which takes no output cap) cannot be bounded")
        return RequestFacts(
            operation=route.operation, endpoint="responses.compact", model=model, body=body,
            size=measure_responses(body), max_tokens=window, stream=False, params=common_params(body),
            continues=continues, continues_unseen_bound=window if continues else None,
            continues_param=continues.split(":", 1)[0] if continues and ":" in continues else "previous_response_id",
        )

    def measure(self, body: Mapping[str, Any]) -> InputSize:
        return measure_responses(body)

    def build_upstream(self, facts: RequestFacts, enforced: Enforced, incoming: Incoming) -> UpstreamRequest:
        body = dict(facts.body)
        write_enforced(body, enforced)
        if facts.operation == "compact":
            if facts.max_tokens is not None and enforced.max_tokens < facts.max_tokens:
                raise RequestError(None, f"a policy caps the output at {enforced.max_tokens} tokens, but "
                                         "/v1/responses/compact takes no output cap to enforce it", status=403,
                                   code="output_cap_unenforceable")
            return UpstreamRequest("POST", enforced.provider.base_url + "/responses/compact",
                                   self.upstream_headers(enforced.provider, incoming.headers), orjson.dumps(body))
        body["max_output_tokens"] = enforced.max_tokens
        return UpstreamRequest("POST", enforced.provider.base_url + "/responses",
                               self.upstream_headers(enforced.provider, incoming.headers), orjson.dumps(body))

    def usage(self, facts: RequestFacts, payload: Any) -> TokenUsage | None:
        return responses_usage(payload)

    def stream_meter(self, facts: RequestFacts) -> StreamMeter:
        return ResponsesStreamMeter()

    def stream_error(self, message: str, code: str) -> bytes:
        """The Responses stream's own `error` event."""
        payload = {"type": "error", "code": code, "message": message, "param": None, "sequence_number": 0}
        return b"event: error\ndata: " + orjson.dumps(payload) + b"\n\n"

    def passthrough(self, route: AdapterRoute, incoming: Incoming, scope: PassScope) -> UpstreamRequest:
        """Forward to the provider that served the response, when the caller's key created it; a
        token count to the provider serving its model."""
        if route.operation == "count":
            return self._count(incoming, scope)
        response_id = incoming.path_params.get("response_id", "")
        record = scope.lookup.find(response_id) if scope.lookup is not None and response_id else None
        provider = next((p for p in scope.providers if record is not None and p.name == record.provider), None)
        if record is None or record.key_id != scope.key_id or provider is None:
            raise RequestError(None, f"No response found with id '{response_id}' for this key (a key reaches only "
                                     "the responses created with it through this gateway)", status=404,
                               code="response_not_found")
        suffix = {"cancel": "/cancel", "input_items": "/input_items"}.get(route.operation, "")
        query = urlencode(dict(incoming.query)) if route.method == "GET" else ""
        url = f"{provider.base_url}/responses/{response_id}{suffix}" + (f"?{query}" if query else "")
        return UpstreamRequest(route.method, url, self.upstream_headers(provider, incoming.headers),
                               incoming.body if route.method == "POST" else b"")


    def _count(self, incoming: Incoming, scope: PassScope) -> UpstreamRequest:
        body = parse_json_object(incoming.body)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise RequestError("model", "model: required, to choose the provider that counts the tokens")
        served = next(((p, p.aliases.get(model, model)) for p in scope.providers
                       if p.protocol == self.family and (model in p.aliases or p.serves(model))), None)
        if served is None:
            raise RequestError("model", f"model {model!r} is not served by any openai provider of this gateway",
                               status=404, code="model_not_found")
        previous = body.get("previous_response_id")
        if isinstance(previous, str):  # the count reads that chain: only the key's own
            record = scope.lookup.find(previous) if scope.lookup is not None else None
            if record is None or record.key_id != scope.key_id:
                raise RequestError("previous_response_id", f"No response found with id '{previous}' for this key",
                                   status=404, code="response_not_found")
        provider, body["model"] = served
        return UpstreamRequest("POST", provider.base_url + "/responses/input_tokens",
                               self.upstream_headers(provider, incoming.headers), orjson.dumps(body))


ADAPTER = OpenAIResponsesAdapter()

#: statuses of a background response still running
PENDING_STATUSES = frozenset({"queued", "in_progress"})
Claim = TypeVar("Claim")
#: settles one held call: (claim, usage, status "ok" | "estimated", response id)
SettleHeld = Callable[[Claim, TokenUsage, str, str], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class HeldResponse(Generic[Claim]):
    key_id: str
    provider: ProviderConfig
    model: str
    bound: TokenUsage  # the most the call can be charged (what its reservation holds)
    expires: datetime  # the reservation's expiry: settled at the bound before it
    claim: Claim  # what the gateway settles (its admission)


class BackgroundResponses(ResponseLookup, Generic[Claim]):
    """Background responses (`background: true`) whose reservation stays held until they finish.

    Creating one answers `queued` with no usage, so the gateway holds the worst-case reservation
    instead of settling. It settles with the response's own usage as soon as it sees the response
    finished: a GET or cancel forwarded through the gateway (`observe`), or its own poll of the
    provider (`sweep`, run every few seconds). A response still running when its reservation is
    about to expire (`gateway.reservation_ttl` minus `margin`) is settled at the bound, status
    `estimated`: never a silent $0, never past a budget. Held responses are answered by `find`
    (so their creator can read and cancel them) with the bound as their tokens (so a continuation
    reserves at least as much); other ids are looked up in `records`.
    """

    def __init__(self, records: ResponseLookup | None, settle: SettleHeld[Claim], transport: UpstreamTransport, *,
                 timeout: float = 30.0, margin: timedelta = timedelta(seconds=15),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._records = records
        self._settle = settle
        self._transport = transport
        self._timeout = timeout
        self._margin = margin
        self._clock = clock
        self._held: dict[str, HeldResponse[Claim]] = {}

    def __len__(self) -> int:
        return len(self._held)

    def find(self, response_id: str) -> RecordedResponse | None:
        held = self._held.get(response_id)
        if held is not None:
            return RecordedResponse(held.key_id, held.provider.name, held.model, held.bound.input_tokens,
                                    held.bound.output_tokens)
        return self._records.find(response_id) if self._records is not None else None

    def hold(self, payload: Any, held: HeldResponse[Claim]) -> bool:
        """Keep the call's reservation when `payload` is a background response still running."""
        status = payload.get("status") if isinstance(payload, Mapping) else None
        response_id = ADAPTER.response_id(payload)
        if status not in PENDING_STATUSES or response_id is None:
            return False
        self._held[response_id] = held
        return True

    async def observe(self, payload: Any) -> bool:
        """Settle a held response that `payload` (a response read from the provider) shows finished."""
        response_id = ADAPTER.response_id(payload)
        status = payload.get("status") if isinstance(payload, Mapping) else None
        if response_id not in self._held or status not in TERMINAL_STATUSES:
            return False
        held = self._held.pop(response_id)
        usage = responses_usage(payload)
        await self._settle(held.claim, usage or held.bound, "ok" if usage is not None else "estimated", response_id)
        return True

    async def sweep(self) -> int:
        """Settle every held response that finished, or whose reservation is about to expire."""
        settled = 0
        for response_id, held in list(self._held.items()):
            if response_id not in self._held:
                continue
            if self._clock() >= held.expires - self._margin:
                del self._held[response_id]
                await self._settle(held.claim, held.bound, "estimated", response_id)
                settled += 1
                continue
            headers = ADAPTER.upstream_headers(held.provider, {})
            try:
                reply = await self._transport.send("GET", f"{held.provider.base_url}/responses/{response_id}", headers,
                                                   None, self._timeout)
                body = await reply.read()
            except UpstreamError:
                continue  # asked again at the next sweep
            if reply.status == 200:
                try:
                    payload = orjson.loads(body)
                except orjson.JSONDecodeError:
                    continue
                settled += await self.observe(payload)
        return settled
