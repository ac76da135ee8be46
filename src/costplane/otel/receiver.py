"""`POST /v1/traces`: the OTLP/HTTP trace receiver (protobuf or JSON, optionally gzip).

Authenticated with a costplane key (`Authorization: Bearer cpk_…` or `x-api-key`, which
the OTel exporters send via OTEL_EXPORTER_OTLP_HEADERS). The key's bound attributes
override span attributes. Spans that cannot be priced are reported in the response's
`partial_success` (rejected_spans + message) and recorded as unpriced nodes, never as $0.
Ingested spend also counts against every matching budget of the bundle (as spent).
"""

from __future__ import annotations

import gzip
import zlib

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from costplane.app import Application
from costplane.attribution.context import InvalidAttribute
from costplane.core.claims import budget_claims
from costplane.gateway.keys import KeyVerifier
from costplane.ledger.types import KeyRecord
from costplane.otel.decode import OtlpDecodeError, SpanData, decode_json, decode_protobuf
from costplane.otel.genai import SpanIngest, ingest_spans, unpriced_alerts
from costplane.runs.auth import api_error, authenticate

__all__ = ["OtlpIngestor", "otlp_routes"]

MAX_BODY = 32 * 1024 * 1024


class OtlpIngestor:
    """Decode → price → store, off the event loop. Usable without HTTP (benchmarks, tests)."""

    def __init__(self, application: Application) -> None:
        self.app = application

    def ingest(self, spans: list[SpanData], key: KeyRecord | None) -> SpanIngest:
        app = self.app
        result = ingest_spans(spans, app.catalog.resolve, key.attributes if key else {}, key.id if key else None,
                              self._linked)
        bundle = app.bundle
        plain = result.events
        if bundle.budgets:
            plain = []
            for event in result.events:
                facts = {"model": event.model, "provider": event.provider, "endpoint": event.endpoint,
                         "input_tokens": event.usage.input_tokens}
                specs = bundle.engine.budgets_for("llm.request", event.context, facts)
                claims = budget_claims(specs, event.context, event.model, 0, event.ts)
                if claims:
                    app.store.record_event(event, claims)
                else:
                    plain.append(event)
        app.store.record_nodes(result.nodes, plain)
        for alert in unpriced_alerts(result):  # GenAI calls with no usage and no content: never a silent $0
            app.core.notifier.notify(alert)
        return result

    def _linked(self, event_id: str, decision_id: str) -> bool:
        """A span the gateway emitted for a call already in this ledger: not counted twice."""
        event = self.app.store.get_event(event_id)
        return event is not None and event.decision_id == decision_id


def otlp_routes(application: Application) -> list[BaseRoute]:
    keys = KeyVerifier(application.store, application.config.gateway.key_cache_seconds)
    ingestor = OtlpIngestor(application)

    async def traces(request: Request) -> Response:
        key = authenticate(keys, request)
        if key is None:
            return api_error(401, "invalid_api_key", "missing, unknown, expired or revoked costplane key")
        body = await request.body()
        if len(body) > MAX_BODY:
            return api_error(413, "request_too_large", f"OTLP payload exceeds {MAX_BODY} bytes")
        encoding = request.headers.get("content-encoding", "").lower()
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
        except (OSError, zlib.error) as exc:
            return api_error(400, "invalid_encoding", f"cannot {encoding}-decode the body: {exc}")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        is_json = content_type == "application/json"
        if not is_json and content_type not in ("application/x-protobuf", "application/protobuf"):
            return api_error(415, "unsupported_media_type",
                             f"content-type {content_type!r}: use application/x-protobuf or application/json")
        try:
            spans = decode_json(body) if is_json else decode_protobuf(body)
            result = await run_in_threadpool(ingestor.ingest, spans, key)
        except (OtlpDecodeError, InvalidAttribute) as exc:
            return api_error(400, "invalid_otlp", str(exc))
        return _response(result, is_json)

    return [Route("/v1/traces", traces, methods=["POST"])]


def _response(result: SpanIngest, is_json: bool) -> Response:
    """partial_success: spans rejected (no known price) are counted in rejected_spans; spans accepted
    but unpriced (no usage, no content) leave it at 0 and are a warning in error_message."""
    rejected = len(result.rejected)
    warnings = result.warnings()
    if warnings:
        warnings[0] = f"{len(warnings)} span(s) accepted but unpriced: {warnings[0]}"
    problems = result.rejected + warnings
    message = "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
    if is_json:
        payload = {"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message}} if problems else {}
        return Response(orjson.dumps(payload), media_type="application/json")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    response = ExportTraceServiceResponse()
    if problems:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    return Response(response.SerializeToString(), media_type="application/x-protobuf")
