"""Counted once, whatever arrives first.

* span first: a GenAI span exported with the real OpenTelemetry SDK (OTLP/HTTP exporter) reaches
  `/v1/traces` and is counted; then the call it made reaches the gateway with the span's
  `traceparent`. The gateway's event supersedes the span's: spend and the budget's counter hold the
  gateway's cost alone — plain and streamed.
* gateway first: a span of the trace and parent id the gateway saw (the span itself, or the parent
  of the HTTP client span in its batch) is linked: the receiver says so (`x-costplane-linked-spans`)
  and adds nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from costplane.app import Application
from costplane.config import parse_config
from costplane.ledger.types import ClaimState, CostEvent
from costplane.otel.calls import CallLinker
from costplane.server import create_server
from costplane.serving import BackgroundServer
from run_harness import Server, config
from store_fixtures import pg_schema, require_postgres

from .call_ids import wait_for_ids

BUDGET = """
kind: Budget
name: apps-daily
scope: ctx.team == "apps"
amount: 100 USD
window: {calendar: day, timezone: UTC}
"""
ASK = [{"role": "user", "content": "Where is parcel 41?"}]


def _spend(server: Server) -> int:
    return sum(row.cost_nano for row in server.app.store.spend())


def _budget(server: Server, event: CostEvent) -> ClaimState:
    linker = CallLinker(server.app.store, lambda: server.app.bundle)
    (state,) = server.app.store.claim_states(linker.claims(event, ["apps-daily"]))
    return state


def _call(server: Server, key: str, headers: dict[str, str], stream: bool) -> CostEvent:
    body: dict[str, object] = {"model": "gpt-4o-mini", "max_tokens": 30, "messages": ASK}
    if stream:
        body["stream"] = True
    reply = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=30,
                       headers={"authorization": f"Bearer {key}", **headers})
    assert reply.status_code == 200, reply.text
    if stream:
        assert "data: [DONE]" in reply.text
    return wait_for_ids(server.app.store)


@pytest.fixture
def pg_server(tmp_path: Path, simulator: BackgroundServer) -> Iterator[Server]:
    """The same server on PostgreSQL (a fresh schema)."""
    require_postgres()
    bundle = tmp_path / "pg-bundle"
    bundle.mkdir()
    (bundle / "bundle.yaml").write_text(BUDGET)
    with pg_schema() as url:
        application = Application(parse_config(config(simulator.url, url, bundle), base=tmp_path))
        try:
            with BackgroundServer(create_server(application)) as running:
                yield Server(running.url, application, simulator.url)
        finally:
            application.close()


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_span_exported_before_the_gateway_event_is_superseded(stream: bool, store: str, request: pytest.FixtureRequest,
                                                             make_server: Callable[..., Server]) -> None:
    server: Server = request.getfixturevalue("pg_server") if store == "postgres" else make_server(BUDGET)
    key = server.key(team="apps")
    provider = TracerProvider(resource=Resource.create({"service.name": "instrumented-app"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=f"{server.url}/v1/traces", headers={"authorization": f"Bearer {key}"})))
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("chat gpt-4o-mini", kind=trace.SpanKind.CLIENT) as span:
        span.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                             "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 900,
                             "gen_ai.usage.output_tokens": 300})
        headers: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(headers)  # traceparent: this span is the parent
    provider.force_flush()  # exported (SimpleSpanProcessor: on end) before the call reaches the gateway
    trace_id = format(span.get_span_context().trace_id, "032x")
    span_id = format(span.get_span_context().span_id, "016x")
    (recorded,) = server.app.store.run_events(trace_id)
    early = server.app.store.get_event(recorded.id)  # read with its call ids
    assert early is not None
    assert early.cost_nano > 0 and early.status == "ok" and (early.trace_id, early.span_id) == (trace_id, span_id)
    assert _spend(server) == early.cost_nano and _budget(server, early).spent_nano == early.cost_nano

    gateway = _call(server, key, headers, stream)
    assert (gateway.trace_id, gateway.span_id) == (trace_id, span_id) and gateway.response_id
    assert gateway.cost_nano > 0 and gateway.cost_nano != early.cost_nano
    superseded = server.app.store.get_event(early.id)
    assert superseded is not None and superseded.status == "superseded" and superseded.cost_nano == 0
    assert _spend(server) == gateway.cost_nano  # the call counts once, at the gateway's metered cost
    assert _budget(server, gateway).spent_nano == gateway.cost_nano  # the span's spend was taken back
    provider.shutdown()


def _otlp(trace_id: str, spans: list[dict[str, object]]) -> bytes:
    def attr(name: str, value: object) -> dict[str, object]:
        typed = {"intValue": str(value)} if isinstance(value, int) else {"stringValue": str(value)}
        return {"key": name, "value": typed}

    return orjson.dumps({"resourceSpans": [{"resource": {"attributes": [attr("service.name", "app")]},
                                            "scopeSpans": [{"spans": [
        {"traceId": trace_id, "spanId": s["id"], "parentSpanId": s.get("parent", ""), "name": s["name"],
         "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000001000000000",
         "attributes": [attr(k, v) for k, v in dict(s.get("attributes", {})).items()]}  # type: ignore[call-overload]
        for s in spans]}]}]})


LLM = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
       "gen_ai.usage.input_tokens": 900, "gen_ai.usage.output_tokens": 300}


@pytest.mark.parametrize("http_child", [False, True], ids=["parent-is-the-llm-span", "parent-is-its-http-span"])
def test_span_after_the_gateway_event_is_linked(http_child: bool, make_server: Callable[..., Server]) -> None:
    server = make_server()
    key = server.key(team="apps")
    trace_id, llm_span, http_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "b7ad6b7169203331"
    seen = http_span if http_child else llm_span
    gateway = _call(server, key, {"traceparent": f"00-{trace_id}-{seen}-01"}, False)
    assert (gateway.trace_id, gateway.span_id) == (trace_id, seen)
    spans: list[dict[str, object]] = [{"id": llm_span, "name": "chat gpt-4o-mini", "attributes": LLM}]
    if http_child:
        spans.append({"id": http_span, "parent": llm_span, "name": "POST"})
    reply = httpx.post(f"{server.url}/v1/traces", content=_otlp(trace_id, spans), timeout=30,
                       headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
    assert reply.status_code == 200 and reply.headers["x-costplane-linked-spans"] == "1"
    assert not server.app.store.run_events(trace_id) and _spend(server) == gateway.cost_nano

    other = "1111111111111111"  # a span of the same trace that is not this call: counted
    reply = httpx.post(f"{server.url}/v1/traces", content=_otlp(trace_id, [
        {"id": other, "name": "chat gpt-4o-mini", "attributes": LLM}]), timeout=30,
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
    assert reply.status_code == 200 and reply.headers["x-costplane-linked-spans"] == "0"
    (counted,) = server.app.store.run_events(trace_id)
    assert counted.cost_nano > 0 and _spend(server) == gateway.cost_nano + counted.cost_nano
