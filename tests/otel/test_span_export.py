"""The gateway's OTel GenAI spans: exported over OTLP/HTTP to a real receiver on 127.0.0.1, decoded
with the official `opentelemetry-proto` classes, carrying usage, the cost and the decision id; a
costplane receiver on the same ledger links them instead of counting the calls twice."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from costplane.app import Application
from costplane.config import ConfigError, parse_config
from costplane.gateway.keys import create_key
from costplane.otel.export import GatewaySpanExporter, span_exporter
from costplane.otel.export_settings import TelemetrySettings
from costplane.server import create_server
from costplane.serving import BackgroundServer
from run_harness import Server, config

LONG = "You are a support agent for a parcel company. " * 120  # long enough for the simulator's prompt cache


class Collector:
    """A tiny OTLP/HTTP trace receiver: keeps each request's body and headers, answers success."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                collector.bodies.append(body)
                collector.headers.append({k.lower(): v for k, v in self.headers.items()})
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self) -> list[tuple[dict[str, Any], dict[str, Any], Any]]:
        """(resource attributes, span attributes, span) of every exported span."""
        out = []
        for body in self.bodies:
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for rs in request.resource_spans:
                resource = {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        attrs = {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in span.attributes}
                        out.append((resource, attrs, span))
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


def _application(tmp_path: Path, simulator_url: str, name: str, telemetry: dict[str, Any] | None) -> Application:
    raw = config(simulator_url, f"sqlite:///{tmp_path}/{name}.db", None)
    if telemetry is not None:
        raw["telemetry"] = telemetry
    return Application(parse_config(raw, base=tmp_path))


def test_gateway_spans_decode_and_carry_the_cost(tmp_path: Path, simulator: BackgroundServer,
                                                 collector: Collector,
                                                 make_server: Callable[..., Server]) -> None:
    application = _application(tmp_path, simulator.url, "gw", {
        "otlp_endpoint": collector.url, "headers": {"x-tenant": "finops"}, "service_name": "edge-gateway",
        "export_interval": 0.05})
    key, _ = create_key(application.store, "test", {"team": "ml"})
    with BackgroundServer(create_server(application)) as server:
        oai = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
        oai.chat.completions.create(model="gpt-4o-mini", max_tokens=40, messages=[
            {"role": "user", "content": "Where is parcel 7?"}], extra_headers={"x-costplane-run": "run-42"})
        stream = oai.chat.completions.create(model="gpt-4o", max_tokens=40, stream=True, messages=[
            {"role": "user", "content": "Write a refund note."}])
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        ant = anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0)
        ant.messages.create(model="claude-haiku-4-5", max_tokens=40, messages=[
            {"role": "user", "content": "Summarise the ticket."}],
            system=[{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}])
    # the server stopped: its exporter flushed everything queued on the way out
    events = {e.decision_id: e for e in application.store.list_events()}
    assert len(events) == 3
    exported = collector.spans()
    assert len(exported) == 3
    assert all(h["content-type"] == "application/x-protobuf" and h["x-tenant"] == "finops"
               for h in collector.headers)
    for resource, attrs, span in exported:
        event = events[attrs["costplane.decision_id"]]
        assert resource["service.name"] == "edge-gateway"
        assert span.kind == 3 and span.name == f"chat {event.model}"  # SPAN_KIND_CLIENT, "{operation} {model}"
        assert attrs["costplane.event_id"] == event.id and attrs["costplane.team"] == "ml"
        assert attrs["gen_ai.operation.name"] == "chat" and attrs["gen_ai.response.model"] == event.model
        assert attrs["gen_ai.usage.input_tokens"] == event.usage.input_tokens > 0
        assert attrs["gen_ai.usage.output_tokens"] == event.usage.output_tokens > 0
        assert attrs["costplane.cost.nano_usd"] == event.cost_nano > 0
        assert Decimal(repr(attrs["gen_ai.usage.cost.amount"])) == Decimal(event.cost_nano) / 10**9
        assert (attrs["gen_ai.usage.cost.currency"], attrs["gen_ai.usage.cost.source"]) == ("USD", "local")
        assert span.end_time_unix_nano - span.start_time_unix_nano == event.latency_ms * 1_000_000
    by_model = {attrs["gen_ai.response.model"]: attrs for _, attrs, _ in exported}
    assert by_model["gpt-4o-mini"]["costplane.run"] == "run-42"
    assert by_model["gpt-4o-mini"]["gen_ai.provider.name"] == "openai"
    claude = by_model["claude-haiku-4-5"]
    assert claude["gen_ai.provider.name"] == "anthropic"
    # semconv: input INCLUDES the cache write, which is a sub-count priced once
    write = events[claude["costplane.decision_id"]].usage.cache_write_tokens
    assert write > 0 and claude["gen_ai.usage.cache_write.input_tokens"] == write
    assert claude["gen_ai.usage.input_tokens"] > write

    # the same spans sent to a costplane receiver on the SAME ledger: linked, not counted again
    again = Application(application.config)
    with BackgroundServer(create_server(again)) as server:
        own_key, _ = create_key(again.store, "otel", {})
        for body in collector.bodies:
            reply = httpx.post(f"{server.url}/v1/traces", content=body, timeout=10, headers={
                "authorization": f"Bearer {own_key}", "content-type": "application/x-protobuf"})
            assert reply.status_code == 200 and reply.content == b""  # no partial_success
        assert again.store.count_events() == 3
    again.close()
    application.close()

    # to a costplane on ANOTHER ledger they are ordinary GenAI spans: priced to the same cost
    other = make_server()
    other_key = other.key()
    for body in collector.bodies:
        reply = httpx.post(f"{other.url}/v1/traces", content=body, timeout=10, headers={
            "authorization": f"Bearer {other_key}", "content-type": "application/x-protobuf"})
        assert reply.status_code == 200 and reply.content == b""
    received = {e.model: e for e in other.app.store.list_events()}
    assert len(received) == 3
    for event in events.values():
        assert (received[event.model].cost_nano, received[event.model].usage) == (event.cost_nano, event.usage)
        assert received[event.model].context.team == "ml"


def _record(exporter: GatewaySpanExporter, n: int) -> None:
    from costplane.attribution.context import Context
    from costplane.config import ProviderConfig
    from costplane.core.requests import Admission, LlmRequest, Settlement
    from costplane.pricing.types import PriceSheet, TokenUsage

    request = LlmRequest(protocol="openai", endpoint="chat.completions", model="m", input_bound=10,
                         input_estimate=3, max_tokens=5, stream=False)
    admission = Admission("dec_1", "allow", Context(), request, ProviderConfig("p", "openai", "http://x"), "m", 5, {},
                          PriceSheet("m", "openai", Decimal(1), Decimal(2)), None, (), 0)
    for _ in range(n):
        exporter.record(admission, TokenUsage(3, 2), "ok", 7, Settlement("evt_1", 7, None))


def test_full_queue_drops_and_counts_and_failures_count() -> None:
    posted: list[int] = []

    def post(url: str, body: bytes, headers: Any, timeout: float) -> int:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        posted.append(len(request.resource_spans[0].scope_spans[0].spans))
        return 200 if len(posted) == 1 else 503

    exporter = GatewaySpanExporter(TelemetrySettings(otlp_endpoint="http://127.0.0.1:9/v1/traces", queue_size=3,
                                                     batch_size=2), post=post)
    _record(exporter, 5)  # not started: nothing is consumed
    assert exporter.dropped == 2
    assert exporter.flush(timeout=5)
    assert posted == [2, 1] and (exporter.exported, exporter.failed) == (2, 1)
    assert span_exporter(TelemetrySettings()) is None  # disabled: no exporter, the hook is one test


def test_telemetry_settings_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"telemetry\.otlp_endpoint: expected an http\(s\) URL"):
        parse_config({"telemetry": {"otlp_endpoint": "collector:4318"}})
    with pytest.raises(ConfigError, match=r"telemetry\.queue_size: expected an integer from 1"):
        parse_config({"telemetry": {"otlp_endpoint": "http://c:4318", "queue_size": 0}})
    with pytest.raises(ConfigError, match=r"telemetry\.sample"):
        parse_config({"telemetry": {"sample": 1}})
    settings = parse_config({"telemetry": {"otlp_endpoint": "https://c:4318/otlp/"}}).telemetry
    assert settings.otlp_endpoint == "https://c:4318/otlp/v1/traces"
    assert parse_config({"telemetry": {"otlp_endpoint": "http://c/v1/traces"}}).telemetry.otlp_endpoint == \
        "http://c/v1/traces"
