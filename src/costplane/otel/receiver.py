"""`POST /v1/traces`: the OTLP/HTTP trace receiver (protobuf or JSON, optionally gzip).

Declared in the one route table (rule `attribution`) and authenticated by `costplane.auth`
with a costplane key (`Authorization: Bearer cpk_…` or `x-api-key`, which the OTel exporters
send via OTEL_EXPORTER_OTLP_HEADERS). The key's bound attributes override span attributes.
Spans that cannot be priced are reported in the response's `partial_success` (rejected_spans +
message) and recorded as unpriced nodes, never as $0.
Ingested spend is recorded through the decision core (hook `spend.record`): it counts against
every matching budget of the bundle as spent, logs an `observed` decision and raises budget alerts.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from costplane.api.errors import ApiError
from costplane.api.principal import KEY_ROLES
from costplane.api.table import Call, Endpoint, Scoping, Served, check_attribution
from costplane.app import Application
from costplane.attribution.context import Context, InvalidAttribute
from costplane.ledger.types import KeyRecord
from costplane.otel.calls import CallLinker
from costplane.otel.decode import OtlpDecodeError, SpanData, decode_json, decode_protobuf
from costplane.otel.genai import SpanIngest, ingest_spans, unpriced_alerts

__all__ = ["MAX_BODY", "OtlpIngestor", "otlp_endpoint"]

MAX_BODY = 32 * 1024 * 1024


class OtlpIngestor:
    """Decode → price → store, off the event loop. Usable without HTTP (benchmarks, tests)."""

    def __init__(self, application: Application) -> None:
        self.app = application
        self.calls = CallLinker(application.store, lambda: application.bundle)  # counted once (otel/calls.py)

    def ingest(self, spans: list[SpanData], key: KeyRecord | None,
               check: Callable[[Context, str], None] | None = None) -> SpanIngest:
        """Price and store `spans`; `check(context, where)` may refuse (raise) before anything is stored."""
        app = self.app
        result = ingest_spans(spans, app.catalog.resolve, key.attributes if key else {}, key.id if key else None,
                              self._linked, self.calls.lookup(spans))
        if check is not None:
            for i, node in enumerate(result.nodes):
                check(node.context, f"spans[{i}].attributes.")
            for i, event in enumerate(result.events):
                check(event.context, f"spans[{i}].attributes.")
        app.store.record_nodes(result.nodes, ())
        if result.events:  # spend observed after the fact: through the decision core (budgets, alerts, log)
            app.core.record_spend(result.events, "otlp")
        self.calls.link_recorded(result)  # a gateway event recorded meanwhile supersedes the span's
        for alert in unpriced_alerts(result):  # GenAI calls with no usage and no content: never a silent $0
            app.core.notifier.notify(alert)
        return result

    def _linked(self, event_id: str, decision_id: str) -> bool:
        """A span the gateway emitted for a call already in this ledger: not counted twice."""
        event = self.app.store.get_event(event_id)
        return event is not None and event.decision_id == decision_id


def _otlp_error(status: int, code: str, message: str) -> ApiError:
    return ApiError(status, code, message, "(body)")


def otlp_endpoint(application: Application) -> Endpoint:
    """`POST /v1/traces` in the route table: a key's principal (rule `attribution`: the key's bound
    attributes override span attributes); the body is read raw (protobuf or JSON, optionally gzip)."""
    ingestor = OtlpIngestor(application)

    async def traces(call: Call) -> dict[str, Any]:
        body = call.body if isinstance(call.body, bytes) else b""
        encoding = call.headers.get("content-encoding", "").lower()
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise _otlp_error(400, "invalid_encoding", f"cannot {encoding}-decode the body: {exc}") from None
        if len(body) > MAX_BODY:
            raise _otlp_error(413, "request_too_large", f"OTLP payload exceeds {MAX_BODY} bytes")
        content_type = call.headers.get("content-type", "").split(";")[0].strip().lower()
        is_json = content_type == "application/json"
        if not is_json and content_type not in ("application/x-protobuf", "application/protobuf"):
            raise _otlp_error(415, "unsupported_media_type",
                              f"content-type {content_type!r}: use application/x-protobuf or application/json")
        try:
            spans = decode_json(body) if is_json else decode_protobuf(body)
            principal = call.principal
            result = await run_in_threadpool(
                ingestor.ingest, spans, principal.key,
                lambda ctx, where: check_attribution(principal, ctx.dimensions(), where))
        except (OtlpDecodeError, InvalidAttribute) as exc:
            raise _otlp_error(400, "invalid_otlp", str(exc)) from None
        return Served(_response(result, is_json))

    return Endpoint("POST", "/v1/traces", "machine_otlp_traces", "OTLP/HTTP trace export (protobuf or JSON)",
                    KEY_ROLES, {"type": "object", "description": "ExportTraceServiceResponse (partialSuccess when "
                                "spans were rejected)"}, traces, raw_body=True, max_body=MAX_BODY,
                    body={"type": "object", "description": "ExportTraceServiceRequest as application/x-protobuf "
                          "or application/json, optionally gzip/deflate"},
                    tags=("machine: traces",), scoping=Scoping("attribution", "the key's bound attributes override "
                                                               "span attributes"))


def _response(result: SpanIngest, is_json: bool) -> Response:
    """partial_success: spans rejected (no known price) are counted in rejected_spans; spans accepted
    but unpriced (no usage, no content) leave it at 0 and are a warning in error_message."""
    rejected = len(result.rejected)
    warnings = result.warnings()
    headers = {"x-costplane-linked-spans": str(result.linked)}  # calls the gateway counted: not again
    if warnings:
        warnings[0] = f"{len(warnings)} span(s) accepted but unpriced: {warnings[0]}"
    problems = result.rejected + warnings
    message = "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
    if is_json:
        payload = {"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message}} if problems else {}
        return Response(orjson.dumps(payload), media_type="application/json", headers=headers)
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    response = ExportTraceServiceResponse()
    if problems:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    return Response(response.SerializeToString(), media_type="application/x-protobuf", headers=headers)
