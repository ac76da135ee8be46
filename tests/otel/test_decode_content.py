"""Captured content on span events (semconv 1.26-1.36 `gen_ai.content.prompt` / `.completion`) is read
from protobuf (the SDK's own encoder) and JSON, under the current names, and counted with the bound."""

from __future__ import annotations

import orjson
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from costplane.gateway.tokens import measure_openai_chat
from costplane.otel.aliases import normalise
from costplane.otel.decode import decode_json, decode_protobuf
from costplane.otel.estimate import content_usage

PROMPT = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Where is parcel 41?"}]
COMPLETION = [{"role": "assistant", "content": "On its way."}]


def test_event_content_from_protobuf() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("chat gpt-4o", attributes={
            "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o"}) as span:
        span.add_event("gen_ai.content.prompt", {"gen_ai.prompt": orjson.dumps(PROMPT).decode()})
        span.add_event("gen_ai.content.completion", {"gen_ai.completion": orjson.dumps(COMPLETION).decode()})
        span.add_event("other", {"gen_ai.prompt": "ignored: not a gen_ai event"})
    (decoded,) = decode_protobuf(encode_spans(memory.get_finished_spans()).SerializeToString())
    attrs = decoded.attributes
    assert attrs["gen_ai.provider.name"] == "openai"  # the former gen_ai.system
    assert orjson.loads(attrs["gen_ai.input.messages"]) == PROMPT
    usage = content_usage(attrs)
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens) == (measure_openai_chat({"messages": PROMPT}).bound,
                                                         measure_openai_chat({"messages": COMPLETION}).bound)


def test_event_content_from_json_and_span_attributes_win() -> None:
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "chat",
        "attributes": [{"key": "gen_ai.input.messages", "value": {"stringValue": "on the span"}}],
        "events": [{"name": "gen_ai.client.inference.operation.details", "attributes": [
            {"key": "gen_ai.input.messages", "value": {"stringValue": "on the event"}},
            {"key": "gen_ai.output.messages", "value": {"stringValue": "answer"}}]}]}]}]}]}
    (span,) = decode_json(orjson.dumps(body))
    assert span.attributes["gen_ai.input.messages"] == "on the span"
    assert span.attributes["gen_ai.output.messages"] == "answer"


def test_no_content_and_indexed_content() -> None:
    assert content_usage(normalise({"gen_ai.request.model": "gpt-4o"})) is None
    attrs = normalise({"llm.input_messages.0.message.content": "hello there",
                       "llm.output_messages.0.message.content": "hi", "gen_ai.request.max_tokens": 99})
    usage = content_usage(attrs)
    assert usage is not None and usage.input_tokens == measure_openai_chat({"messages": ["hello there"]}).bound
    assert usage.output_tokens == measure_openai_chat({"messages": ["hi"]}).bound  # captured output wins
    only_input = content_usage(normalise({"gen_ai.prompt.0.content": "hello", "gen_ai.request.max_tokens": 99}))
    assert only_input is not None and only_input.output_tokens == 99  # no output captured: max_tokens bounds it
