"""The gateway's OTel GenAI spans: one CLIENT span per served call, exported over OTLP/HTTP protobuf.

Opt-in (`telemetry.otlp_endpoint` in costplane.yaml). The request path only appends a small
record to a bounded queue (`record`, no I/O, no encoding); a background thread batches the
records, builds the `ExportTraceServiceRequest` with the `opentelemetry-proto` classes and POSTs
it. A full queue drops the new span and counts it (`dropped`); a failed export counts its spans
(`failed`) and is logged — telemetry never slows or fails a call.

Each span carries the GenAI semantic-convention attributes (`gen_ai.operation.name`,
`gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.response.model`, `gen_ai.usage.*` with
input tokens INCLUDING cached tokens, as semconv says), the cost as the open proposal
`gen_ai.usage.cost.amount` (double, USD) / `.currency` (`USD`) / `.source` (`local`: costplane
computed it) plus the exact `costplane.cost.nano_usd`, and costplane's own `costplane.decision_id`,
`costplane.event_id`, `costplane.status` and attribution (`costplane.<dimension>`,
`costplane.tag.<name>` — the names the receiver reads). A costplane receiver on the same ledger
links such spans to the event instead of counting them again.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from costplane.ledger.types import CallIds
from costplane.otel.export_settings import TelemetrySettings
from costplane.pricing.types import TokenUsage

if TYPE_CHECKING:
    from costplane.core.requests import Admission, Settlement

__all__ = ["SEMCONV_PROVIDERS", "GatewaySpanExporter", "SpanRecord", "encode_spans", "span_exporter"]

log = logging.getLogger("costplane.telemetry")

#: genai-prices provider ids -> semconv `gen_ai.provider.name`
SEMCONV_PROVIDERS: dict[str, str] = {
    "openai": "openai", "anthropic": "anthropic", "google": "gcp.gen_ai", "aws": "aws.bedrock",
    "azure": "azure.ai.openai", "mistral": "mistral_ai", "groq": "groq", "deepseek": "deepseek", "x-ai": "x_ai",
    "cohere": "cohere", "perplexity": "perplexity",
}
_OPERATIONS = {"embeddings": "embeddings"}  # anything else the gateway serves is a chat
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")
_NO_IDS = CallIds()
_SPAN_KIND_CLIENT = 3
_STATUS_ERROR = 2
_NANO = Decimal(10) ** -9

Post = Callable[[str, bytes, Mapping[str, str], float], int]


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """What the request path hands over: references only, encoded later on the export thread."""

    admission: Admission
    usage: TokenUsage
    status: str
    latency_ms: int
    event_id: str
    cost_nano: int
    end_ns: int
    ids: CallIds = _NO_IDS  # the provider's response id; the client's traceparent trace and parent id


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _set(attrs: Any, key: str, value: str | int | float | bool) -> None:
    item = attrs.add()
    item.key = key
    if isinstance(value, bool):
        item.value.bool_value = value
    elif isinstance(value, int):
        item.value.int_value = value
    elif isinstance(value, float):
        item.value.double_value = value
    else:
        item.value.string_value = value


def _attributes(record: SpanRecord) -> list[tuple[str, str | int | float | bool]]:
    a, usage = record.admission, record.usage
    provider = SEMCONV_PROVIDERS.get(a.price.provider, a.price.provider or a.provider.name)
    out: list[tuple[str, str | int | float | bool]] = [
        ("gen_ai.operation.name", _OPERATIONS.get(a.request.endpoint, "chat")),
        ("gen_ai.provider.name", provider),
        ("gen_ai.request.model", a.request.model),
        ("gen_ai.response.model", a.model),
        *((("gen_ai.response.id", record.ids.response_id),) if record.ids.response_id else ()),
        ("gen_ai.usage.input_tokens", usage.input_tokens),
        ("gen_ai.usage.output_tokens", usage.output_tokens),
    ]
    if a.max_tokens:
        out.append(("gen_ai.request.max_tokens", a.max_tokens))
    for name, count in (("gen_ai.usage.cache_read.input_tokens", usage.cache_read_tokens),
                        ("gen_ai.usage.cache_write.input_tokens", usage.cache_write_tokens),
                        ("gen_ai.usage.reasoning.output_tokens", usage.reasoning_tokens)):
        if count:
            out.append((name, count))
    for unit, count in usage.units:  # further billed units (audio, 1h cache writes, fees)
        out.append((f"costplane.usage.{unit}", int(count)))
    for condition, value in usage.conditions:  # service tier, batch
        out.append((f"costplane.usage.condition.{condition}", str(value)))
    out += [
        ("gen_ai.usage.cost.amount", float(Decimal(record.cost_nano) * _NANO)),
        ("gen_ai.usage.cost.currency", "USD"),
        ("gen_ai.usage.cost.source", "local"),
        ("costplane.cost.nano_usd", record.cost_nano),
        ("costplane.decision_id", a.decision_id),
        ("costplane.event_id", record.event_id),
        ("costplane.status", record.status),
        ("costplane.effect", a.effect),
        ("costplane.provider", a.provider.name),
        ("costplane.latency_ms", record.latency_ms),
    ]
    if a.price.flagged_default:
        out.append(("costplane.price_flagged", True))
    ctx = a.context
    out += [(f"costplane.{name}", value) for name, value in ctx.dimensions().items() if name != "trace"]
    out += [(f"costplane.tag.{name}", value) for name, value in ctx.tags.items()]
    if ctx.key_id:
        out.append(("costplane.key_id", ctx.key_id))
    return out


def encode_spans(records: Sequence[SpanRecord], service_name: str) -> bytes:
    """An OTLP `ExportTraceServiceRequest` (protobuf bytes) of the records, one resource and scope."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from costplane import __version__

    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    _set(resource_spans.resource.attributes, "service.name", service_name)
    _set(resource_spans.resource.attributes, "telemetry.sdk.name", "costplane")
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "costplane.gateway"
    scope_spans.scope.version = __version__
    for record in records:
        span = scope_spans.spans.add()
        trace = (record.admission.context.trace or "").lower()
        span.trace_id = bytes.fromhex(trace) if _HEX32.match(trace) and trace != "0" * 32 else os.urandom(16)
        span.span_id = os.urandom(8)
        parent = record.ids.span_id
        if parent and record.ids.trace_id == trace and _HEX16.match(parent):
            span.parent_span_id = bytes.fromhex(parent)  # under the client's span that made the call
        attrs = _attributes(record)
        span.name = f"{attrs[0][1]} {record.admission.model}"
        span.kind = _SPAN_KIND_CLIENT  # protobuf enum SPAN_KIND_CLIENT
        span.end_time_unix_nano = record.end_ns
        span.start_time_unix_nano = max(0, record.end_ns - record.latency_ms * 1_000_000)
        for key, value in attrs:
            _set(span.attributes, key, value)
        if record.status in ("error", "cut"):
            span.status.code = _STATUS_ERROR
            span.status.message = "the upstream stream was cut" if record.status == "cut" else "upstream error"
    return bytes(request.SerializeToString())


_STOP = object()


class GatewaySpanExporter:
    """Bounded queue + one export thread. `record` is safe from any thread and never blocks."""

    def __init__(self, settings: TelemetrySettings, *, post: Post = _post) -> None:
        if settings.otlp_endpoint is None:
            raise ValueError("telemetry.otlp_endpoint is not set")
        self.settings = settings
        self.url = settings.otlp_endpoint
        self._post = post
        self._queue: queue.Queue[object] = queue.Queue(maxsize=settings.queue_size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.exported = 0  # spans the receiver accepted (2xx)
        self.failed = 0  # spans of exports that failed
        self.dropped = 0  # spans dropped because the queue was full

    # -- the request path ----------------------------------------------------------------------
    def record(self, admission: Admission, usage: TokenUsage, status: str, latency_ms: int,
               settlement: Settlement, ids: CallIds = _NO_IDS) -> None:
        try:
            self._queue.put_nowait(SpanRecord(admission, usage, status, latency_ms, settlement.event_id,
                                              settlement.cost_nano, time.time_ns(), ids))
        except queue.Full:
            with self._lock:
                self.dropped += 1

    # -- the export thread ---------------------------------------------------------------------
    def start(self) -> GatewaySpanExporter:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="costplane-span-export", daemon=True)
            self._thread.start()
        return self

    def flush(self, timeout: float = 10.0) -> bool:
        """Export everything queued so far; True when done within `timeout` seconds."""
        if self._thread is None:  # not started (tests, one-shot tools): export here
            while not self._queue.empty():
                self._drain_once()
            return True
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Export what is queued, then stop the thread."""
        if self._thread is None:
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.warning("span export queue full at shutdown; %d spans not exported", self._queue.qsize())
            return
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while self._drain_once(block=True):
            pass

    def _drain_once(self, block: bool = False) -> bool:
        """One batch: the first item (waiting up to the export interval when blocking), then more for
        at most the interval, up to batch_size or a flush/stop marker; export it. False after stop."""
        batch: list[SpanRecord] = []
        waiters: list[threading.Event] = []
        running = True
        interval = self.settings.export_interval
        try:
            item = self._queue.get(timeout=interval) if block else self._queue.get_nowait()
        except queue.Empty:
            return True
        deadline = time.monotonic() + interval
        while True:
            if item is _STOP:
                running = False
                break
            if isinstance(item, threading.Event):
                waiters.append(item)  # a flush: export what is there now
                break
            if isinstance(item, SpanRecord):
                batch.append(item)
            if len(batch) >= self.settings.batch_size:
                break
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if block and remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
        if batch:
            self._export(batch)
        for waiter in waiters:
            waiter.set()
        if not running:
            self._drain_rest()
        return running

    def _drain_rest(self) -> None:
        rest: list[SpanRecord] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, SpanRecord):
                rest.append(item)
            elif isinstance(item, threading.Event):
                item.set()
        for start in range(0, len(rest), self.settings.batch_size):
            self._export(rest[start:start + self.settings.batch_size])

    def _export(self, batch: list[SpanRecord]) -> None:
        try:
            body = encode_spans(batch, self.settings.service_name)
            status = self._post(self.url, body, self.settings.all_headers(), self.settings.timeout)
            problem = None if 200 <= status < 300 else f"HTTP {status}"
        except (OSError, ValueError) as exc:
            problem = str(getattr(exc, "reason", exc))
        with self._lock:
            if problem is None:
                self.exported += len(batch)
                return
            self.failed += len(batch)
        log.warning("exporting %d gateway spans to %s failed: %s", len(batch), self.url, problem)


def span_exporter(settings: TelemetrySettings, *, post: Post = _post) -> GatewaySpanExporter | None:
    """The exporter of `telemetry`, or None when no endpoint is set (the hook then costs one test)."""
    return GatewaySpanExporter(settings, post=post) if settings.enabled else None
