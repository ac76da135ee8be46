"""Anthropic Messages: `POST /v1/messages`, plain and streamed (typed SSE events).

Errors are `{"type": "error", "error": {"type", "message"}}`; the key is `x-api-key` (or a bearer
token); `anthropic-version`/`anthropic-beta` are passed upstream. Server tools billed per use
(web search) get a `max_uses` when they have none, so the worst case is a bound; code execution
(`code_execution_*`, no such cap) is a `code_executions` fee: unpriced in the shipped data, so the
unknown-price rule applies, and refused as uncapped where an override prices it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from costplane.config import GatewaySettings, ProviderConfig
from costplane.gateway.metering import billed_facts, response_id, served_usage
from costplane.gateway.protocols.base import (
    AdapterRoute,
    CredentialSource,
    Enforced,
    ErrorReply,
    Incoming,
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
from costplane.gateway.tokens import InputSize, measure_anthropic
from costplane.gateway.validate import BodyError, check_body
from costplane.gateway.validate_anthropic import MESSAGES_BODY
from costplane.pricing.readers import anthropic_tool_units, anthropic_usage, cap_tool_uses, tool_use_limits, with_units
from costplane.pricing.types import TokenUsage

__all__ = ["ADAPTER", "ANTHROPIC_ERROR_TYPES", "AnthropicMessages", "MessagesStreamMeter", "anthropic_error"]

ANTHROPIC_ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
    404: "not_found_error", 405: "invalid_request_error", 413: "request_too_large", 415: "invalid_request_error",
    429: "rate_limit_error", 502: "api_error", 503: "overloaded_error", 504: "api_error",
}
_CEL_PARAMS = ("temperature", "top_p", "n", "user")
_VERSION = "2023-06-01"


def anthropic_error(status: int, message: str) -> ErrorReply:
    body = {"type": "error", "error": {"type": ANTHROPIC_ERROR_TYPES.get(status, "api_error"), "message": message}}
    return ErrorReply(orjson.dumps(body))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


class MessagesStreamMeter(StreamMeter):
    """Meters a Messages SSE stream from message_start and message_delta usage."""

    usage_counts_partial_output = True

    def __init__(self) -> None:
        super().__init__()
        self._sse = SSEBuffer()
        self._start: Mapping[str, Any] = {}
        self._delta: dict[str, Any] = {}  # cumulative usage fields of message_delta (server_tool_use, …)
        self._output = 0
        self._tool_blocks: list[Any] = []  # server tool calls billed per use (code execution)
        self.started = False

    @property
    def usage(self) -> TokenUsage | None:
        if not self.started:
            return None
        merged = dict(self._start)
        merged.update((k, v) for k, v in self._delta.items() if v is not None and k != "output_tokens")
        merged["output_tokens"] = max(self._output, self.deltas if not self.done else 0)
        return with_units(anthropic_usage(merged), anthropic_tool_units(self._tool_blocks))

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in self._sse.events(chunk):
            data = sse_data(event)
            is_stop = False
            payload: Any = None
            if data is not None:
                try:
                    payload = orjson.loads(data)
                except orjson.JSONDecodeError:
                    payload = None
            if isinstance(payload, dict):
                kind = payload.get("type")
                if kind == "message_start":
                    message = payload.get("message") or {}
                    self._start = dict(message.get("usage") or {}) if isinstance(message, dict) else {}
                    self._output = _int(self._start.get("output_tokens"))
                    self.response_id = response_id(message)
                    self.started = True
                elif kind == "message_delta":
                    usage = payload.get("usage") or {}
                    if isinstance(usage, dict):
                        self._output = max(self._output, _int(usage.get("output_tokens")))
                        self._delta.update(usage)
                    self.done = True
                elif kind == "content_block_delta":
                    self.deltas += 1
                elif kind == "content_block_start" and anthropic_tool_units([payload.get("content_block")]):
                    self._tool_blocks.append(payload.get("content_block"))
                elif kind == "message_stop":
                    is_stop = True
            out.append((event + b"\n\n", is_stop))
        return out


class AnthropicMessages(ProtocolAdapter):
    family = "anthropic"
    name = "anthropic-messages"
    routes = (AdapterRoute("POST", "/v1/messages", "messages"),)
    credentials: tuple[CredentialSource, ...] = ("bearer", "x-api-key")
    path_prefixes = ("/v1/messages", "/v1/")
    signature_headers = ("anthropic-version",)
    pass_headers = ("anthropic-version", "anthropic-beta")

    def parse(self, route: AdapterRoute, incoming: Incoming, settings: GatewaySettings) -> RequestFacts:
        body = parse_json_object(incoming.body)
        try:
            check_body(MESSAGES_BODY, body)
        except BodyError as exc:
            raise RequestError(exc.param, str(exc)) from None
        cap_tool_uses(body, settings.default_max_tool_uses)  # forwarded with the caps the bound counts
        tool_uses, uncapped = tool_use_limits(body)
        max_tokens = body.get("max_tokens")
        stream = body.get("stream") is True
        return RequestFacts(
            operation=route.operation, endpoint="messages", model=str(body["model"]), body=body,
            size=measure_anthropic(body), max_tokens=int(max_tokens) if max_tokens is not None else None,
            stream=stream, params={**{k: v for k, v in body.items() if k in _CEL_PARAMS}, **billed_facts(body)},
            tool_uses=tool_uses, uncapped=uncapped, cacheable=not stream and body.get("temperature") == 0,
            path_params=incoming.path_params,
        )

    def build_upstream(self, facts: RequestFacts, enforced: Enforced, incoming: Incoming) -> UpstreamRequest:
        body = dict(facts.body)
        body["model"] = enforced.model
        body["max_tokens"] = enforced.max_tokens
        body.update(enforced.mutations)
        return UpstreamRequest("POST", enforced.provider.base_url + "/messages",
                               self.upstream_headers(enforced.provider, incoming.headers), orjson.dumps(body))

    def upstream_headers(self, provider: ProviderConfig, client_headers: Mapping[str, str]) -> dict[str, str]:
        headers = {"content-type": "application/json", "x-api-key": provider.api_key() or "costplane"}
        for name in self.pass_headers:
            value = client_headers.get(name)
            if value:
                headers[name] = value
        headers.setdefault("anthropic-version", _VERSION)
        return headers

    def usage(self, facts: RequestFacts, payload: Any) -> TokenUsage | None:
        if not isinstance(payload, Mapping):
            return None
        usage = with_units(anthropic_usage(payload.get("usage")), anthropic_tool_units(payload.get("content")))
        return served_usage(usage, payload)

    def measure(self, body: Mapping[str, Any]) -> InputSize:
        return measure_anthropic(body)

    def stream_meter(self, facts: RequestFacts) -> StreamMeter:
        return MessagesStreamMeter()

    def error(self, status: int, code: str, message: str, param: str | None = None) -> ErrorReply:
        return anthropic_error(status, message)

    def stream_error(self, message: str, code: str) -> bytes:
        err = {"type": "error", "error": {"type": "api_error", "message": message}}
        return b"event: error\ndata: " + orjson.dumps(err) + b"\n\n"


ADAPTER = AnthropicMessages()
