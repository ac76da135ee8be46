"""One governed call: authenticate, attribute, admit, forward, meter, settle.

The same flow serves every protocol; the route's `ProtocolAdapter` supplies what differs (where the
credential and the model are, validation and bounds, the upstream request, usage, error shapes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from costplane.attribution.context import Context, InvalidAttribute
from costplane.attribution.resolve import AttributionConflict, resolve_context, traceparent_ids
from costplane.auth.authenticator import Authenticator
from costplane.core.decision import DecisionCore
from costplane.core.requests import Admission, Denial, LlmRequest, Settlement
from costplane.gateway.crossroute import RoutedCall, plan_route
from costplane.gateway.errors import error_response
from costplane.gateway.protocols.base import (
    AdapterRoute,
    Enforced,
    Incoming,
    PassScope,
    ProtocolAdapter,
    RequestError,
    RequestFacts,
    ResponseLookup,
    StreamMeter,
)
from costplane.gateway.protocols.openai_responses import BackgroundResponses, HeldResponse
from costplane.gateway.tokens import InputSize, request_hash
from costplane.gateway.translate import StreamTranslator, translate_reply
from costplane.gateway.upstream import UpstreamError, UpstreamResponse, UpstreamTransport
from costplane.httpstatus import denial_status
from costplane.ledger.executor import StoreExecutor
from costplane.ledger.store import StoreUnavailable
from costplane.ledger.types import CallIds, KeyRecord
from costplane.money import format_usd
from costplane.otel.export import GatewaySpanExporter
from costplane.pricing.readers import with_per_call_units
from costplane.pricing.types import TokenUsage

__all__ = ["GovernedProxy"]

log = logging.getLogger("costplane.gateway")

_INTERNAL_PARAMS = frozenset({"cache"})  # mutations that steer the gateway, never sent upstream
_CACHE_VALUES = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}


def _is_json(content_type: str) -> bool:
    """application/json, or a structured `+json` type, with or without parameters (charset)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _incoming(request: Request, body: bytes = b"") -> Incoming:
    """The request as the adapters see it. Read straight off the ASGI scope (what Starlette's
    `url`, `query_params` and `headers` would build, without building them): headers keyed by
    their lower-cased name with the first value of a repeated one, as `dict(request.headers)`."""
    scope = request.scope
    path: str = scope["path"]
    if "?" in path or "#" in path or "\\" in path:  # the URL's escaped form, as request.url.path
        path = request.url.path
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1")
        if key not in headers:
            headers[key] = value.decode("latin-1")
    params = scope.get("path_params")
    return Incoming(request.method, path, {k: str(v) for k, v in params.items()} if params else {},
                    dict(request.query_params) if scope.get("query_string") else {}, headers, body)


def _hashed(facts: RequestFacts) -> Mapping[str, Any]:
    """What the request hashes cover: the body, with the model wherever the protocol put it."""
    if facts.body.get("model") == facts.model:
        return facts.body
    return {**facts.body, "model": facts.model}


_NO_IDS = CallIds()
#: upstream headers a relayed upstream error keeps (the SDKs back off by them; boto3 reads its error code)
_RELAYED = frozenset({"retry-after", "retry-after-ms", "x-request-id", "request-id", "x-amzn-errortype",
                      "x-amzn-requestid"})
_RELAYED_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")


def _relayed(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()
            if name.lower() in _RELAYED or name.lower().startswith(_RELAYED_PREFIXES)}


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


class _Gone(Exception):
    """The client went away while its request body was being read."""


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A governed call read and checked, ready for admission."""

    incoming: Incoming
    facts: RequestFacts
    ctx: Context
    llm: LlmRequest
    trace: CallIds
    cache_wanted: bool
    unconfirmed: str | None  # the secret of a key taken from the cache, confirmed in the admission's step


class GovernedProxy:
    def __init__(self, core: DecisionCore, auth: Authenticator, transport: UpstreamTransport,
                 max_request_bytes: int, upstream_timeout: float, store: StoreExecutor,
                 spans: GatewaySpanExporter | None = None, lookup: ResponseLookup | None = None) -> None:
        self.core = core
        self.store = store
        self.auth = auth
        self.transport = transport
        self.max_request_bytes = max_request_bytes
        self.upstream_timeout = upstream_timeout
        self.spans = spans  # OTel GenAI span export (telemetry.otlp_endpoint); None: off
        # background responses hold their reservation until they finish; they and the responses the
        # gateway metered (`lookup`) answer by response id (chains, pass-through scoping)
        self.background: BackgroundResponses[Admission] = BackgroundResponses(
            lookup, self._settle_held, transport, timeout=upstream_timeout)
        self.lookup: ResponseLookup = self.background

    async def handle(self, adapter: ProtocolAdapter, route: AdapterRoute, request: Request) -> Response:
        with self.store.request():
            try:
                if route.governed:
                    return await self._handle(adapter, route, request)
                return await self._pass(adapter, route, request)
            except StoreUnavailable as exc:  # the key or the admission could not be read: refused, in its shape
                return error_response(adapter, 503, "spend_unverifiable",
                                      f"spend cannot be verified (store unavailable: {exc}); failing closed",
                                      retryable=True)

    async def _authenticated_body(self, adapter: ProtocolAdapter,
                                  request: Request) -> tuple[KeyRecord, Incoming] | Response:
        """The caller's key (read under a current credential generation) and the request with its body,
        or the error that refuses it."""
        incoming = _incoming(request)
        secret = adapter.credential(incoming)
        key = await self.store.run(self.auth.key, secret) if secret else None  # a store read on PostgreSQL
        if key is None:
            return self._unauthorized(adapter)
        return await self._with_body(adapter, request, key, incoming)

    async def _with_body(self, adapter: ProtocolAdapter, request: Request, key: KeyRecord,
                         incoming: Incoming) -> tuple[KeyRecord, Incoming] | Response:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_request_bytes:
            return self._too_large(adapter)
        content_type = request.headers.get("content-type")
        if content_type is not None and not _is_json(content_type) and request.method == "POST":
            return error_response(adapter, 415, "unsupported_media_type",
                                  f"content-type header: expected application/json, got {content_type[:80]!r}",
                                  param="content-type")
        try:
            raw = await self._read_body(request)
        except _Gone:  # the client hung up before its body arrived: nothing admitted, nothing to answer
            return Response(status_code=400)
        if raw is None:
            return self._too_large(adapter)
        return key, replace(incoming, body=raw)

    async def _prepare(self, adapter: ProtocolAdapter, route: AdapterRoute, request: Request) -> _Prepared | Response:
        """The call's key, facts, context and core request, or the error that refuses it.

        A key found in the authenticator's cache is used as it is to read and check the request, and
        confirmed (under a credential generation read in the authenticator's trust window) in the
        store step that admits the call — one thread hand-off instead of two — or, when the request
        is refused here, before that answer: a key whose revocation returned before the request
        arrived only ever gets 401."""
        incoming = _incoming(request)
        secret = adapter.credential(incoming)
        cached = self.auth.cached_key(secret) if secret else None
        if cached is None:  # not cached: the full read now, which confirms the key
            with_body = await self._authenticated_body(adapter, request)
        else:
            with_body = await self._with_body(adapter, request, cached, incoming)
        checked: _Prepared | Response = with_body if isinstance(with_body, Response) else await self._checked(
            adapter, route, request, *with_body, unconfirmed=secret if cached is not None else None)
        if cached is not None and isinstance(checked, Response) and await self.store.run(self.auth.key, secret) is None:
            return self._unauthorized(adapter)  # revoked (or expired) since it was cached
        return checked

    async def _checked(self, adapter: ProtocolAdapter, route: AdapterRoute, request: Request, key: KeyRecord,
                       incoming: Incoming, *, unconfirmed: str | None) -> _Prepared | Response:
        """The request with its body parsed and bounded, attributed and hashed; or its 400/403/404."""
        try:
            facts = adapter.parse(route, incoming, self.core.config.gateway)
            size = await self._chain_bound(facts, key.id)
        except RequestError as exc:
            return error_response(adapter, exc.status, exc.code, exc.message, param=exc.param)
        try:
            ctx = resolve_context(request.headers, key.attributes, key.id)
        except AttributionConflict as exc:
            return error_response(adapter, 403, "attribution_conflict", str(exc), param=exc.source)
        except InvalidAttribute as exc:
            return error_response(adapter, 400, "invalid_attribution", str(exc), param=exc.source)

        cache_header = request.headers.get("x-costplane-cache")
        cache_wanted = False
        if cache_header is not None:
            choice = _CACHE_VALUES.get(cache_header.strip().lower())
            if choice is None:
                return error_response(adapter, 400, "invalid_request",
                                      f"x-costplane-cache header: expected on or off, got {cache_header[:40]!r}",
                                      param="x-costplane-cache")
            cache_wanted = choice

        hashed = _hashed(facts)
        llm = LlmRequest(
            protocol=adapter.family, endpoint=facts.endpoint, model=facts.model, input_bound=size.bound,
            input_estimate=size.estimate, max_tokens=facts.max_tokens, stream=facts.stream, params=facts.params,
            loop_hash=request_hash(hashed, normalise=True),
            # the cache answers the same key at the same endpoint only: never another tenant, never another shape
            cache_hash=request_hash({"scope": [adapter.name, facts.endpoint, key.id],
                                     "body": request_hash(hashed, normalise=False)}, normalise=False)
            if facts.cacheable else None,
        )
        return _Prepared(incoming, facts, ctx, llm, _trace(request), cache_wanted, unconfirmed)

    def _admit_as(self, unconfirmed: str | None, admit: Callable[[Context, LlmRequest], Admission | Denial],
                  ctx: Context, llm: LlmRequest) -> Admission | Denial | None:
        """One store step: the cached key's confirmation (when `unconfirmed` holds its secret), then
        the admission. None: the key was revoked or expired since it was cached (nothing admitted)."""
        if unconfirmed is not None and self.auth.key(unconfirmed) is None:
            return None
        return admit(ctx, llm)

    async def _handle(self, adapter: ProtocolAdapter, route: AdapterRoute, request: Request) -> Response:
        started = time.perf_counter()
        prepared = await self._prepare(adapter, route, request)
        if isinstance(prepared, Response):
            return prepared
        facts, incoming, llm, trace = prepared.facts, prepared.incoming, prepared.llm, prepared.trace
        admit = partial(self.core.admit, tool_uses=dict(facts.tool_uses), uncapped=dict(facts.uncapped))
        outcome = await self.store.run(self._admit_as, prepared.unconfirmed, admit, prepared.ctx, llm)
        if outcome is None:
            return self._unauthorized(adapter)
        if isinstance(outcome, Denial):
            return error_response(adapter, denial_status(outcome), outcome.code, outcome.message,
                                  param="model" if outcome.code == "model_not_found" else None,
                                  decision_id=outcome.decision_id, retryable=outcome.retryable,
                                  remaining_nano=outcome.remaining_nano)
        admission = outcome
        use_cache = llm.cache_hash is not None and (prepared.cache_wanted or admission.params.get("cache") is True)
        if use_cache:
            hit = await self.store.run(self.core.serve_cached, admission,
                                       int((time.perf_counter() - started) * 1000))
            if hit is not None:
                entry, settlement = hit
                headers = self._headers(admission, 0, settlement.remaining_nano)
                headers["x-costplane-cache"] = "hit"
                headers["x-costplane-saved-usd"] = format_usd(entry.cost_nano)
                return Response(entry.body, media_type=entry.content_type, headers=headers)

        mutations = {k: v for k, v in admission.params.items() if k not in _INTERNAL_PARAMS}
        routed: RoutedCall | None = None
        served, served_facts, served_incoming = adapter, facts, incoming
        try:
            if admission.provider.protocol != adapter.family:  # routed to another vendor: translated
                routed = plan_route(adapter, facts, admission.provider.protocol, admission.model,
                                    self.core.config.gateway)
                served, served_facts, served_incoming = routed.served, routed.facts, routed.incoming
                mutations = {}  # a policy's parameters are the client protocol's fields
            enforced = Enforced(admission.provider, admission.model, admission.max_tokens, mutations)
            outbound = served.sign(served.build_upstream(served_facts, enforced, served_incoming), admission.provider)
            upstream = await self.transport.send(outbound.method, outbound.url, outbound.headers, outbound.body,
                                                 self.upstream_timeout)
        except RequestError as exc:  # untranslatable, or the provider cannot serve it (e.g. no deployment)
            await self.store.run(self.core.release, admission)
            return error_response(adapter, exc.status, exc.code, exc.message, param=exc.param,
                                  decision_id=admission.decision_id)
        except UpstreamError as exc:
            await self.store.run(self.core.release, admission)
            return self._upstream_failure(adapter, exc, admission)
        if upstream.status >= 400 or not facts.stream:
            return await self._plain(adapter, served_facts, admission, upstream, started, use_cache, trace,
                                     served, routed)
        meter = served.stream_meter(served_facts)
        out_headers = self._headers(admission, admission.worst_nano, admission.remaining_nano)
        out_headers["x-costplane-cost-final"] = "false"
        translator = routed.stream_translator(facts.model) if routed is not None else None
        return StreamingResponse(self._relay(adapter, admission, upstream.chunks(), meter, started, trace, translator),
                                 media_type="text/event-stream" if translator else meter.media_type,
                                 headers=out_headers)

    async def _chain_bound(self, facts: RequestFacts, key_id: str) -> InputSize:
        """The input size, with the recorded tokens of the stored response the request continues."""
        size = facts.size
        if facts.continues is None:
            return size
        recorded = await self.store.run(self.lookup.find, facts.continues) if self.lookup is not None else None
        if recorded is not None and recorded.key_id != key_id:  # another key's response: as if it did not exist
            raise RequestError(facts.continues_param, f"{facts.continues_param}: {facts.continues!r} is not a "
                               "response this gateway metered for this key", status=404, code="not_found")
        if recorded is not None:
            extra = recorded.input_tokens + recorded.output_tokens
        elif facts.continues_unseen_bound is not None:
            extra = facts.continues_unseen_bound
        else:
            raise RequestError(facts.continues_param, f"{facts.continues_param}: {facts.continues!r} is not a "
                               "response this gateway metered for this key", status=404, code="not_found")
        return InputSize(bound=size.bound + extra, estimate=size.estimate + extra, messages=size.messages)

    async def _pass(self, adapter: ProtocolAdapter, route: AdapterRoute, request: Request) -> Response:
        """An ungoverned route: authenticated and forwarded as the adapter says, never charged."""
        checked = await self._authenticated_body(adapter, request)
        if isinstance(checked, Response):
            return checked
        key, incoming = checked
        scope = PassScope(key.id, self.core.config.providers, self.lookup)
        try:
            outbound = await self.store.run(adapter.passthrough, route, incoming, scope)
            provider = next((p for p in self.core.config.providers if outbound.url.startswith(p.base_url)), None)
            if provider is not None:
                outbound = adapter.sign(outbound, provider)
            upstream = await self.transport.send(outbound.method, outbound.url, outbound.headers, outbound.body,
                                                 self.upstream_timeout)
        except RequestError as exc:
            return error_response(adapter, exc.status, exc.code, exc.message, param=exc.param)
        except UpstreamError as exc:
            return error_response(adapter, 504 if exc.kind == "timeout" else 502, f"upstream_{exc.kind}",
                                  f"{exc} (nothing was charged)", retryable=True)
        content_type = upstream.headers.get("content-type", "application/json")
        headers = {"x-costplane-cost-usd": "0"}
        if content_type.startswith("text/event-stream"):
            return StreamingResponse(upstream.chunks(), status_code=upstream.status, media_type=content_type,
                                     headers=headers)
        try:
            payload = await upstream.read()
        except UpstreamError as exc:
            return error_response(adapter, 502, f"upstream_{exc.kind}", f"{exc} (nothing was charged)",
                                  retryable=True)
        if upstream.status == 200 and len(self.background):
            try:
                read = orjson.loads(payload)
            except orjson.JSONDecodeError:
                read = None
            await self.background.observe(read)  # a held response read finished: settled
        return Response(payload, status_code=upstream.status, media_type=content_type, headers=headers)

    async def _settle_held(self, admission: Admission, usage: TokenUsage, status: str, response_id: str) -> None:
        """Settle a background response the gateway held, once it finished (or at its bound)."""
        trace = CallIds(response_id)
        await self.store.run(self._settle, admission, usage, status, 0, None, "", trace)

    async def _plain(self, adapter: ProtocolAdapter, facts: RequestFacts, admission: Admission,
                     upstream: UpstreamResponse, started: float, use_cache: bool, trace: CallIds,
                     served: ProtocolAdapter | None = None, routed: RoutedCall | None = None) -> Response:
        """A plain answer of `served` (the client's `adapter` unless the call was `routed` to another
        protocol: then translated back), settled for its usage."""
        served = served or adapter
        try:
            payload_bytes = await upstream.read()
        except UpstreamError as exc:
            if upstream.status >= 400:
                await self.store.run(self.core.release, admission)
                return self._upstream_failure(adapter, exc, admission)
            # the provider accepted the call and its answer broke: it did the work and bills it (no silent $0)
            bound = TokenUsage(input_tokens=admission.request.input_bound, output_tokens=admission.max_tokens,
                               units=tuple(facts.tool_uses.items()))
            latency = int((time.perf_counter() - started) * 1000)
            settled = await self.store.run(self._settle, admission, bound, "cut", latency, None, "", trace)
            return error_response(adapter, 502, f"upstream_{exc.kind}",
                                  f"{exc} (provider {admission.provider.name}; the answer broke after the provider "
                                  f"accepted the call: charged its bound, {format_usd(settled.cost_nano)} USD)",
                                  decision_id=admission.decision_id, retryable=True)
        latency = int((time.perf_counter() - started) * 1000)
        content_type = upstream.headers.get("content-type", "application/json")
        if upstream.status >= 400:
            await self.store.run(self.core.release, admission)
            headers = self._headers(admission, 0, admission.remaining_nano)
            if routed is not None:  # the served protocol's error, told in the client's
                message = (f"the {admission.provider.protocol} provider {admission.provider.name} answered "
                           f"{upstream.status}: {payload_bytes[:300].decode('utf-8', 'replace')}")
                reply = adapter.error(upstream.status, "upstream_error", message)
                return Response(reply.body, status_code=upstream.status, media_type=reply.content_type,
                                headers={**reply.headers, **headers})
            return Response(payload_bytes, status_code=upstream.status, media_type=content_type,
                            headers={**_relayed(upstream.headers), **headers})
        try:
            payload = orjson.loads(payload_bytes)
        except orjson.JSONDecodeError:
            payload = None
        if routed is not None and isinstance(payload, dict):
            payload_bytes = orjson.dumps(translate_reply(routed.served_wire, payload, routed.client_wire,
                                                         admission.request.model))
            content_type = "application/json"
        usage = served.usage(facts, payload)
        if usage is None and self._held(admission, facts, payload):  # still running: the reservation stays
            headers = self._headers(admission, admission.worst_nano, admission.remaining_nano)
            headers["x-costplane-cost-final"] = "false"
            return Response(payload_bytes, status_code=upstream.status, media_type=content_type, headers=headers)
        status = "ok"
        if usage is None:
            # No silent $0: charge the bound of what may have been consumed, and say so.
            usage = TokenUsage(input_tokens=admission.request.input_bound, output_tokens=admission.max_tokens,
                               units=tuple(facts.tool_uses.items()))  # every per-call use it may have made
            status = "estimated"
        ids = CallIds(served.response_id(payload), trace.trace_id, trace.span_id)
        settlement = await self.store.run(self._settle, admission, usage, status, latency,
                                          payload_bytes if use_cache and status == "ok" else None, content_type, ids)
        headers = self._headers(admission, settlement.cost_nano, settlement.remaining_nano)
        return Response(payload_bytes, status_code=upstream.status, media_type=content_type, headers=headers)

    def _held(self, admission: Admission, facts: RequestFacts, payload: Any) -> bool:
        """Keep the reservation of a background response that is still running (settled by the
        background sweep, or when a read through the gateway shows it finished)."""
        key_id = admission.context.key_id
        if key_id is None:
            return False
        expires = (admission.reservation.expires_at if admission.reservation is not None
                   else datetime.now(UTC) + timedelta(seconds=self.core.config.gateway.reservation_ttl))
        bound = TokenUsage(input_tokens=admission.request.input_bound, output_tokens=admission.max_tokens,
                           units=tuple(facts.tool_uses.items()))
        return self.background.hold(payload, HeldResponse(key_id, admission.provider, admission.model, bound,
                                                          expires, admission))

    def _settle(self, admission: Admission, usage: TokenUsage, status: str, latency: int,
                cache_body: bytes | None = None, content_type: str = "", ids: CallIds = _NO_IDS) -> Settlement:
        """Runs on a store thread: settle (the cost event carries the call's ids, so the client's
        spans of the same call link to it), and fill the response cache when asked to."""
        # one search per Chat Completions call with web_search_options, whatever the usage reports
        usage = with_per_call_units(usage, admission.request.endpoint, admission.request.params.get("billed_units")
                                    or ())
        settlement = self.core.settle(admission, usage, status=status, latency_ms=latency, ids=ids)
        if self.spans is not None:  # a queue append: encoding and export run on the exporter's thread
            self.spans.record(admission, usage, status, latency, settlement, ids)
        if cache_body is not None:
            self.core.cache_response(admission, cache_body, content_type, usage, settlement.cost_nano)
        return settlement

    async def _relay(self, adapter: ProtocolAdapter, admission: Admission, chunks: AsyncIterator[bytes],
                     meter: StreamMeter, started: float, trace: CallIds,
                     translator: StreamTranslator | None = None) -> AsyncIterator[bytes]:
        """Relay (and, for a routed call, translate) a stream, settling just before its final event."""
        settled = False

        def ids() -> CallIds:
            return CallIds(meter.response_id, trace.trace_id, trace.span_id)

        def usage_for(status: str) -> TokenUsage:
            return meter.charged(status == "cut", admission.request.input_estimate)

        async def settle(status: str) -> str:
            nonlocal settled
            settled = True
            if status == "ok" and meter.usage is None:
                status = "estimated"  # completed without reporting usage: charged an estimate, and said so
            latency = int((time.perf_counter() - started) * 1000)
            settlement = await self.store.run(self._settle, admission, usage_for(status), status, latency, None, "",
                                              ids())
            return format_usd(settlement.cost_nano)

        try:
            async for chunk in chunks:
                for event, final in meter.feed(chunk):
                    if final and not settled:
                        cost = await settle("ok")
                        yield meter.cost_note(cost, admission.decision_id)
                    out = translator.feed(event) if translator is not None else event
                    if out:
                        yield out
            if not settled:
                await settle("ok" if meter.done else "cut")
            if translator is not None and meter.done:
                tail = translator.close()
                if tail:
                    yield tail
        except UpstreamError as exc:
            if not settled:
                await settle("cut")
            yield adapter.stream_error(f"upstream stream was cut ({exc.kind}); charged for the tokens received",
                                       "upstream_cut")
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

    def _upstream_failure(self, adapter: ProtocolAdapter, exc: UpstreamError, admission: Admission) -> Response:
        status = 504 if exc.kind == "timeout" else 502
        return error_response(adapter, status, f"upstream_{exc.kind}",
                              f"{exc} (provider {admission.provider.name}; nothing was charged)",
                              decision_id=admission.decision_id, retryable=True)

    async def _read_body(self, request: Request) -> bytes | None:
        """The body, or None once it passes max_request_bytes (a chunked body without a
        content-length is not read to its end first)."""
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > self.max_request_bytes:
                    return None
                chunks.append(chunk)
        except ClientDisconnect:
            raise _Gone from None
        return b"".join(chunks)

    def _unauthorized(self, adapter: ProtocolAdapter) -> Response:
        return error_response(adapter, 401, "invalid_api_key", "missing, unknown, expired or revoked costplane key")

    def _too_large(self, adapter: ProtocolAdapter) -> Response:
        return error_response(adapter, 413, "request_too_large",
                              f"body: the request body exceeds {self.max_request_bytes} bytes "
                              "(gateway.max_request_bytes)", param="body")
