"""One governed call: authenticate, attribute, admit, forward, meter, settle.

The same flow serves every endpoint; `Endpoint` supplies what differs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from functools import partial
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from costplane.attribution.context import InvalidAttribute
from costplane.attribution.resolve import AttributionConflict, resolve_context, traceparent_ids
from costplane.auth.authenticator import Authenticator
from costplane.core.decision import DecisionCore
from costplane.core.requests import Admission, Denial, LlmRequest, Settlement
from costplane.gateway.endpoints import BodyError, Endpoint
from costplane.gateway.errors import error_response
from costplane.gateway.metering import (
    AnthropicStreamMeter,
    OpenAIStreamMeter,
    billed_facts,
    response_id,
    served_usage,
)
from costplane.gateway.tokens import request_hash
from costplane.gateway.upstream import UpstreamError, UpstreamTransport
from costplane.ledger.executor import StoreExecutor
from costplane.ledger.store import StoreUnavailable
from costplane.ledger.types import CallIds
from costplane.money import format_usd
from costplane.otel.calls import CallLinker
from costplane.otel.export import GatewaySpanExporter
from costplane.pricing.readers import with_per_call_units
from costplane.pricing.types import TokenUsage

__all__ = ["GovernedProxy"]

log = logging.getLogger("costplane.gateway")

_INTERNAL_PARAMS = frozenset({"cache"})  # mutations that steer the gateway, never sent upstream
_PASS_HEADERS = ("anthropic-version", "anthropic-beta", "openai-organization", "openai-project")
_CACHE_VALUES = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}


def _is_json(content_type: str) -> bool:
    """application/json, or a structured `+json` type, with or without parameters (charset)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _secret(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def _deterministic(endpoint: Endpoint, body: Mapping[str, Any]) -> bool:
    if endpoint.name == "embeddings":
        return True
    if body.get("stream"):
        return False
    return body.get("temperature") == 0 and body.get("n") in (None, 1)


_NO_IDS = CallIds()


def _trace(request: Request) -> CallIds:
    """The trace id and parent span id of the client's `traceparent` (validated by resolve_context)."""
    header = request.headers.get("traceparent")
    if header is None:
        return _NO_IDS
    try:
        trace_id, parent_id = traceparent_ids(header)
    except InvalidAttribute:
        return _NO_IDS
    return CallIds(None, trace_id, parent_id)


class GovernedProxy:
    def __init__(self, core: DecisionCore, auth: Authenticator, transport: UpstreamTransport,
                 max_request_bytes: int, upstream_timeout: float, store: StoreExecutor,
                 spans: GatewaySpanExporter | None = None) -> None:
        self.core = core
        self.store = store
        self.auth = auth
        self.transport = transport
        self.max_request_bytes = max_request_bytes
        self.upstream_timeout = upstream_timeout
        self.calls = CallLinker(core.store, core.active_bundle)  # counted once with the client's own spans
        self.spans = spans  # OTel GenAI span export (telemetry.otlp_endpoint); None: off

    async def handle(self, endpoint: Endpoint, request: Request) -> Response:
        with self.store.request():
            return await self._handle(endpoint, request)

    async def _handle(self, endpoint: Endpoint, request: Request) -> Response:
        started = time.perf_counter()
        proto = endpoint.protocol
        secret = _secret(request)
        key = await self.store.run(self.auth.key, secret) if secret else None  # a store read on PostgreSQL
        if key is None:
            return error_response(proto, 401, "invalid_api_key",
                                  "missing, unknown, expired or revoked costplane key")
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_request_bytes:
            return self._too_large(proto)
        content_type = request.headers.get("content-type")
        if content_type is not None and not _is_json(content_type):
            return error_response(proto, 415, "unsupported_media_type",
                                  f"content-type header: expected application/json, got {content_type[:80]!r}",
                                  param="content-type")
        raw = await self._read_body(request)
        if raw is None:
            return self._too_large(proto)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return error_response(proto, 400, "invalid_json", f"body: the request body is not valid JSON: {exc}",
                                  param="body")
        if not isinstance(body, dict):
            return error_response(proto, 400, "invalid_body", "body: the request body must be a JSON object",
                                  param="body")
        try:
            client_max = endpoint.validate(body)
        except BodyError as exc:
            return error_response(proto, 400, "invalid_request", str(exc), param=exc.param)
        try:
            ctx = resolve_context(request.headers, key.attributes, key.id)
        except AttributionConflict as exc:
            return error_response(proto, 403, "attribution_conflict", str(exc), param=exc.source)
        except InvalidAttribute as exc:
            return error_response(proto, 400, "invalid_attribution", str(exc), param=exc.source)
        trace = _trace(request)

        cache_header = request.headers.get("x-costplane-cache")
        cache_wanted = False
        if cache_header is not None:
            choice = _CACHE_VALUES.get(cache_header.strip().lower())
            if choice is None:
                return error_response(proto, 400, "invalid_request",
                                      f"x-costplane-cache header: expected on or off, got {cache_header[:40]!r}",
                                      param="x-costplane-cache")
            cache_wanted = choice

        tool_uses, uncapped = endpoint.cap_tool_uses(body, self.core.config.gateway.default_max_tool_uses)
        size = endpoint.measure(body)
        stream = body.get("stream") is True and endpoint.streams
        llm = LlmRequest(
            protocol=proto, endpoint=endpoint.name, model=body["model"], input_bound=size.bound,
            input_estimate=size.estimate, max_tokens=client_max, stream=stream,
            params={**{k: v for k, v in body.items() if k in ("temperature", "top_p", "n", "user")},
                    **billed_facts(body)},
            loop_hash=request_hash(body, normalise=True),
            cache_hash=request_hash(body, normalise=False) if _deterministic(endpoint, body) else None,
        )
        try:
            admit = partial(self.core.admit, tool_uses=tool_uses, uncapped=uncapped)
            outcome = await self.store.run(admit, ctx, llm)
        except StoreUnavailable as exc:
            return error_response(proto, 503, "spend_unverifiable",
                                  f"spend cannot be verified (store unavailable: {exc}); failing closed",
                                  retryable=True)
        if isinstance(outcome, Denial):
            return error_response(proto, outcome.status, outcome.code, outcome.message,
                                  param="model" if outcome.code == "model_not_found" else None,
                                  decision_id=outcome.decision_id, retryable=outcome.retryable,
                                  remaining_nano=outcome.remaining_nano)
        admission = outcome
        use_cache = llm.cache_hash is not None and (cache_wanted or admission.params.get("cache") is True)
        if use_cache:
            hit = await self.store.run(self.core.serve_cached, admission,
                                       int((time.perf_counter() - started) * 1000))
            if hit is not None:
                entry, settlement = hit
                headers = self._headers(admission, 0, settlement.remaining_nano)
                headers["x-costplane-cache"] = "hit"
                headers["x-costplane-saved-usd"] = format_usd(entry.cost_nano)
                return Response(entry.body, media_type=entry.content_type, headers=headers)

        upstream_body = dict(body)
        upstream_body["model"] = admission.model
        endpoint.set_limits(upstream_body, admission.max_tokens)
        for name, value in admission.params.items():
            if name not in _INTERNAL_PARAMS:
                upstream_body[name] = value
        client_wants_usage = (body.get("stream_options") or {}).get("include_usage") is True
        if stream and proto == "openai":
            upstream_body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        url = admission.provider.base_url + endpoint.upstream_path
        headers = self._upstream_headers(admission, request)
        try:
            upstream = await self.transport.post(url, headers, orjson.dumps(upstream_body), self.upstream_timeout)
        except UpstreamError as exc:
            await self.store.run(self.core.release, admission)
            return self._upstream_failure(proto, exc, admission)
        if upstream.status >= 400 or not stream:
            return await self._plain(endpoint, admission, upstream, started, use_cache, trace, tool_uses)
        meter: OpenAIStreamMeter | AnthropicStreamMeter = (
            OpenAIStreamMeter(hide_usage_chunk=not client_wants_usage) if proto == "openai"
            else AnthropicStreamMeter())
        out_headers = self._headers(admission, admission.worst_nano, admission.remaining_nano)
        out_headers["x-costplane-cost-final"] = "false"
        return StreamingResponse(self._relay(admission, upstream.chunks(), meter, started, trace),
                                 media_type="text/event-stream", headers=out_headers)

    async def _plain(self, endpoint: Endpoint, admission: Admission, upstream: Any, started: float,
                     use_cache: bool, trace: CallIds, tool_uses: Mapping[str, int] | None = None) -> Response:
        proto = endpoint.protocol
        try:
            payload_bytes = await upstream.read()
        except UpstreamError as exc:
            await self.store.run(self.core.release, admission)
            return self._upstream_failure(proto, exc, admission)
        latency = int((time.perf_counter() - started) * 1000)
        content_type = upstream.headers.get("content-type", "application/json")
        if upstream.status >= 400:
            await self.store.run(self.core.release, admission)
            headers = self._headers(admission, 0, admission.remaining_nano)
            return Response(payload_bytes, status_code=upstream.status, media_type=content_type, headers=headers)
        try:
            payload = orjson.loads(payload_bytes)
        except orjson.JSONDecodeError:
            payload = None
        usage = served_usage(endpoint.response_usage(payload), payload)
        status = "ok"
        if usage is None:
            # No silent $0: charge the bound of what may have been consumed, and say so.
            usage = TokenUsage(input_tokens=admission.request.input_bound, output_tokens=admission.max_tokens,
                               units=tuple((tool_uses or {}).items()))  # every per-call use it may have made
            status = "estimated"
        ids = CallIds(response_id(payload), trace.trace_id, trace.span_id)
        settlement = await self.store.run(self._settle, admission, usage, status, latency,
                                          payload_bytes if use_cache and status == "ok" else None, content_type, ids)
        headers = self._headers(admission, settlement.cost_nano, settlement.remaining_nano)
        return Response(payload_bytes, status_code=upstream.status, media_type=content_type, headers=headers)

    def _settle(self, admission: Admission, usage: TokenUsage, status: str, latency: int,
                cache_body: bytes | None = None, content_type: str = "", ids: CallIds = _NO_IDS) -> Settlement:
        """Runs on a store thread: settle, queue the call's ids (the client's spans of the same call
        then link to this event), and fill the response cache when asked to."""
        # one search per Chat Completions call with web_search_options, whatever the usage reports
        usage = with_per_call_units(usage, admission.request.endpoint, admission.request.params.get("billed_units")
                                    or ())
        settlement = self.core.settle(admission, usage, status=status, latency_ms=latency)
        self.calls.submit(settlement.event_id, ids)  # a queue append; written off the request path
        if self.spans is not None:  # a queue append: encoding and export run on the exporter's thread
            self.spans.record(admission, usage, status, latency, settlement, ids)
        if cache_body is not None:
            self.core.cache_response(admission, cache_body, content_type, usage, settlement.cost_nano)
        return settlement

    async def _relay(self, admission: Admission, chunks: AsyncIterator[bytes],
                     meter: OpenAIStreamMeter | AnthropicStreamMeter, started: float,
                     trace: CallIds) -> AsyncIterator[bytes]:
        settled = False

        def ids() -> CallIds:
            return CallIds(meter.response_id, trace.trace_id, trace.span_id)

        def usage_for(status: str) -> TokenUsage:
            usage = meter.usage
            if usage is None or (status == "cut" and isinstance(meter, OpenAIStreamMeter)):
                # Cut before the final usage: charge what was seen — the whole prompt
                # (it was read) and one token per content delta received.
                usage = TokenUsage(input_tokens=admission.request.input_estimate, output_tokens=meter.deltas)
            return usage

        async def settle(status: str) -> str:
            nonlocal settled
            settled = True
            latency = int((time.perf_counter() - started) * 1000)
            settlement = await self.store.run(self._settle, admission, usage_for(status), status, latency, None, "",
                                              ids())
            return format_usd(settlement.cost_nano)

        try:
            async for chunk in chunks:
                for event, final in meter.feed(chunk):
                    if final and not settled:
                        cost = await settle("ok")
                        yield f": x-costplane-cost-usd={cost} decision={admission.decision_id}\n\n".encode()
                    yield event
            if not settled:
                await settle("ok" if meter.done else "cut")
        except UpstreamError as exc:
            if not settled:
                await settle("cut")
            message = f"upstream stream was cut ({exc.kind}); charged for the tokens received"
            if admission.request.protocol == "anthropic":
                err = {"type": "error", "error": {"type": "api_error", "message": message}}
                yield b"event: error\ndata: " + orjson.dumps(err) + b"\n\n"
            else:
                yield b"data: " + orjson.dumps({"error": {"message": message, "type": "api_error",
                                                          "code": "upstream_cut"}}) + b"\n\n"
        finally:
            if not settled:  # the client went away mid-stream: settle without waiting for it
                settled = True
                latency = int((time.perf_counter() - started) * 1000)
                self.store.submit(self._settle, admission, usage_for("cut"), "cut", latency, None, "", ids())

    def _headers(self, admission: Admission, cost_nano: int, remaining: int | None) -> dict[str, str]:
        headers = {
            "x-costplane-cost-usd": format_usd(cost_nano),
            "x-costplane-decision-id": admission.decision_id,
            "x-costplane-model": admission.model,
        }
        if remaining is not None:
            headers["x-costplane-budget-remaining-usd"] = format_usd(remaining)
        if admission.effect != "allow":
            headers["x-costplane-effect"] = admission.effect
        return headers

    def _upstream_headers(self, admission: Admission, request: Request) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        for name in _PASS_HEADERS:
            value = request.headers.get(name)
            if value:
                headers[name] = value
        api_key = admission.provider.api_key() or "costplane"
        if admission.provider.protocol == "anthropic":
            headers["x-api-key"] = api_key
            headers.setdefault("anthropic-version", "2023-06-01")
        else:
            headers["authorization"] = f"Bearer {api_key}"
        return headers

    def _upstream_failure(self, proto: str, exc: UpstreamError, admission: Admission) -> Response:
        status = 504 if exc.kind == "timeout" else 502
        return error_response(proto, status, f"upstream_{exc.kind}",
                              f"{exc} (provider {admission.provider.name}; nothing was charged)",
                              decision_id=admission.decision_id, retryable=True)

    async def _read_body(self, request: Request) -> bytes | None:
        """The body, or None once it passes max_request_bytes (a chunked body without a
        content-length is not read to its end first)."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_request_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, proto: str) -> Response:
        return error_response(proto, 413, "request_too_large",
                              f"body: the request body exceeds {self.max_request_bytes} bytes "
                              "(gateway.max_request_bytes)", param="body")
