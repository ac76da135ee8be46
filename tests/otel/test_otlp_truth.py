"""OTLP truth: GenAI spans sent with the real OpenTelemetry SDK are never `ok` at $0.

A streamed call with no usage is `estimated` from its captured content, else `unpriced` with a
partial_success warning (rejected_spans stays 0) and an `otlp_unpriced` alert; cache writes are
priced once, whichever naming and input-token convention the instrumentation uses."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import orjson
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from costplane.alerts.dedup import dedup_key
from costplane.core.notify import Notification
from costplane.gateway.tokens import measure_openai_chat
from costplane.pricing.types import TokenUsage
from run_harness import Server

QUESTION = "Where is parcel 41?  It was due on Monday and the tracking page says nothing."
ANSWER = "Parcel 41 left the depot this morning and should arrive by 18:00 today."


class Recorder:
    def __init__(self) -> None:
        self.notifications: list[Notification] = []

    def notify(self, notification: Notification) -> None:
        self.notifications.append(notification)


class Keep(SpanExporter):
    """Collects finished spans; the test sends them itself (to read the OTLP response)."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.spans += list(spans)
        return SpanExportResult.SUCCESS


def _spans(make: Callable[[Any], None]) -> list[ReadableSpan]:
    keep = Keep()
    provider = TracerProvider(resource=Resource.create({"service.name": "chat-svc"}))
    provider.add_span_processor(SimpleSpanProcessor(keep))
    tracer = provider.get_tracer("openai-instrumentation")
    with tracer.start_as_current_span("invoke_agent helper", attributes={"gen_ai.operation.name": "invoke_agent"}):
        make(tracer)  # one trace: the calls are children of an agent span
    provider.shutdown()
    return keep.spans


def _post(server: Server, key: str, spans: list[ReadableSpan]) -> ExportTraceServiceResponse:
    body = encode_spans(spans).SerializeToString()
    reply = httpx.post(f"{server.url}/v1/traces", content=body, timeout=10,
                       headers={"authorization": f"Bearer {key}", "content-type": "application/x-protobuf"})
    assert reply.status_code == 200, reply.text
    response = ExportTraceServiceResponse()
    response.ParseFromString(reply.content)
    return response


def _chat(tracer: Any, name: str, attrs: dict[str, Any]) -> None:
    with tracer.start_as_current_span(name, attributes={"gen_ai.operation.name": "chat",
                                                        "gen_ai.provider.name": "openai",
                                                        "gen_ai.request.model": "gpt-4o-mini", **attrs}):
        pass


def test_streamed_span_without_usage_is_estimated_or_unpriced(make_server: Callable[..., Server]) -> None:
    server = make_server()
    recorder = Recorder()
    server.app.core.notifier = recorder
    key = server.key(team="support")
    messages = [{"role": "user", "parts": [{"type": "text", "content": QUESTION}]}]
    output = [{"role": "assistant", "parts": [{"type": "text", "content": ANSWER}], "finish_reason": "stop"}]

    def make(tracer: Any) -> None:
        _chat(tracer, "chat bare", {"gen_ai.request.max_tokens": 200})  # streamed, no usage, no content
        _chat(tracer, "chat semconv", {"gen_ai.input.messages": orjson.dumps(messages).decode(),
                                       "gen_ai.output.messages": orjson.dumps(output).decode()})
        _chat(tracer, "chat openllmetry", {"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": QUESTION,
                                           "gen_ai.completion.0.content": ANSWER})

    spans = _spans(make)
    response = _post(server, key, spans)
    bare, semconv, openllmetry = (format(s.get_span_context().span_id, "016x") for s in spans[:3])
    trace = format(spans[0].get_span_context().trace_id, "032x")

    # accepted but unpriced: a warning, not a rejection
    assert response.partial_success.rejected_spans == 0
    message = response.partial_success.error_message
    assert "1 span(s) accepted but unpriced" in message and bare in message and "gpt-4o-mini" in message
    assert semconv not in message and openllmetry not in message

    events = {e.id.rsplit("-", 1)[-1]: e for e in server.app.store.run_events(trace)}
    assert set(events) == {bare, semconv, openllmetry}
    assert (events[bare].status, events[bare].cost_nano) == ("unpriced", 0)
    assert all(e.status != "ok" for e in events.values())  # nothing here is a $0 ok

    price = server.app.catalog.resolve("gpt-4o-mini", "openai")
    input_bound = measure_openai_chat({"messages": messages}).bound
    output_bound = measure_openai_chat({"messages": output}).bound
    estimated = events[semconv]
    assert estimated.status == "estimated" and estimated.context.team == "support"
    assert (estimated.usage.input_tokens, estimated.usage.output_tokens) == (input_bound, output_bound)
    assert input_bound > len(QUESTION.encode())  # the bound: every byte, plus message overhead
    rates = price.rates()
    expected = (input_bound * rates["input"] + output_bound * rates["output"]) * 1000  # USD/MTok -> nano-USD
    assert estimated.cost_nano == int(expected.to_integral_value()) > 0
    old = events[openllmetry]
    assert old.status == "estimated" and old.usage.input_tokens == measure_openai_chat(
        {"messages": [QUESTION]}).bound and old.usage.output_tokens == measure_openai_chat(
        {"messages": [ANSWER]}).bound and old.cost_nano > 0

    (alert,) = recorder.notifications
    assert alert.kind == "otlp_unpriced" and alert.subject == "chat-svc/gpt-4o-mini"
    assert alert.data["spans"] == 1 and bare in alert.message
    key_one = dedup_key(alert, {}, estimated.ts, 3600)
    assert key_one == f"otlp_unpriced|chat-svc/gpt-4o-mini|{estimated.ts.date().isoformat()}"

    # the same spans again: idempotent, and still warned about (never silently $0)
    again = _post(server, key, spans)
    assert again.partial_success.rejected_spans == 0 and bare in again.partial_success.error_message
    assert len(server.app.store.run_events(trace)) == 3


def test_json_streamed_span_without_usage_warns(make_server: Callable[..., Server]) -> None:
    server = make_server()
    key = server.key()
    span = {"traceId": "5b8efff798038103d269b633813fc60d", "spanId": "eee19b7ec3c1b180", "name": "chat",
            "startTimeUnixNano": "1763800000000000000", "endTimeUnixNano": "1763800001000000000",
            "attributes": [{"key": "gen_ai.system", "value": {"stringValue": "openai"}},
                           {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                           {"key": "llm.request.type", "value": {"stringValue": "chat"}}]}
    reply = httpx.post(f"{server.url}/v1/traces", json={"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]},
                       headers={"authorization": f"Bearer {key}"}, timeout=10)
    partial = reply.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "0" and "eee19b7ec3c1b180" in partial["errorMessage"]
    (event,) = server.app.store.run_events("5b8efff798038103d269b633813fc60d")
    assert (event.status, event.cost_nano, event.model) == ("unpriced", 0, "gpt-4o")


def _nano(tokens: dict[str, int], rates: dict[str, Decimal]) -> int:
    total = sum(count * rates[kind] for kind, count in tokens.items()) * 1000  # USD/MTok × tokens -> nano-USD
    return int(total.to_integral_value())


def test_cache_write_spans_are_priced_once(make_server: Callable[..., Server]) -> None:
    server = make_server()
    key = server.key()
    base = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-haiku-4-5", "gen_ai.usage.output_tokens": 100}
    cases: dict[str, dict[str, Any]] = {
        # semconv: input INCLUDES the 8,000 written to the cache
        "current": {"gen_ai.usage.input_tokens": 10_000, "gen_ai.usage.cache_write.input_tokens": 8_000},
        # the former name, and both names on one span (an instrumentation in transition)
        "former": {"gen_ai.usage.input_tokens": 10_000, "gen_ai.usage.cache_creation.input_tokens": 8_000},
        "both": {"gen_ai.usage.input_tokens": 10_000, "gen_ai.usage.cache_write.input_tokens": 8_000,
                 "gen_ai.usage.cache_creation.input_tokens": 8_000},
        # OpenLLMetry names
        "openllmetry": {"gen_ai.usage.prompt_tokens": 10_000, "gen_ai.usage.cache_creation_input_tokens": 8_000},
        # Anthropic's API style: input EXCLUDES cache tokens (recognised: cache > input)
        "excluding": {"gen_ai.usage.input_tokens": 2_000, "gen_ai.usage.cache_write.input_tokens": 8_000},
        # excluding, declared (cache < input, so only the declaration tells)
        "declared": {"gen_ai.usage.input_tokens": 2_000, "gen_ai.usage.cache_write.input_tokens": 1_000,
                     "costplane.usage.input_excludes_cache": True},
    }
    ids: dict[str, str] = {}

    def make(tracer: Any) -> None:
        for name, attrs in cases.items():
            with tracer.start_as_current_span(f"chat {name}", attributes={**base, **attrs}) as span:
                ids[format(span.get_span_context().span_id, "016x")] = name

    spans = _spans(make)
    exporter = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", headers={"authorization": f"Bearer {key}"},
                                timeout=10)  # the SDK's own OTLP/HTTP exporter
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()
    trace = format(spans[0].get_span_context().trace_id, "032x")
    events = {ids[e.id.rsplit("-", 1)[-1]]: e for e in server.app.store.run_events(trace)}
    rates = dict(server.app.catalog.resolve("claude-haiku-4-5", "anthropic").rates())
    assert rates["cache_write"] != rates["input"]
    once = _nano({"input": 2_000, "cache_write": 8_000, "output": 100}, rates)
    twice = _nano({"input": 10_000, "cache_write": 8_000, "output": 100}, rates)
    assert once < twice
    for name in ("current", "former", "both", "openllmetry", "excluding"):
        event = events[name]
        assert event.usage == TokenUsage(10_000, 100, 0, 8_000, 0), name
        assert (event.cost_nano, event.status) == (once, "ok"), name
    declared = events["declared"]
    assert declared.usage == TokenUsage(3_000, 100, 0, 1_000, 0)
    assert declared.cost_nano == _nano({"input": 2_000, "cache_write": 1_000, "output": 100}, rates)
