"""OTLP receiver with the real OpenTelemetry SDK exporter: GenAI spans priced like the gateway,
attributed, nested into run trees, idempotent by span id; JSON with older attribute names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import openai
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from costplane.runs.tree import build_tree
from run_harness import Server

LONG = "You are a support agent for a parcel company. " * 120  # long enough for the simulator's prompt cache


class Tee(SpanExporter):
    """Forwards to the real exporter and keeps the spans (to export them again)."""

    def __init__(self, inner: OTLPSpanExporter) -> None:
        self.inner = inner
        self.spans: list[ReadableSpan] = []
        self.results: list[SpanExportResult] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.spans += list(spans)
        result = self.inner.export(spans)
        self.results.append(result)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()


def test_gateway_and_otlp_give_identical_costs(make_server: Callable[..., Server]) -> None:
    server = make_server()
    key = server.key(team="ml")
    oai = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
    ant = anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0)
    calls: list[tuple[str, str, Any]] = []
    for model, content in (("gpt-4o-mini", "Where is parcel 1?"), ("gpt-4o-mini", "Where is parcel 1?"),
                           ("gpt-4o", "Write a refund note.")):
        reply = oai.chat.completions.create(model=model, max_tokens=60, messages=[
            {"role": "system", "content": LONG}, {"role": "user", "content": content}],
            extra_headers={"x-costplane-run": "run-gw"})
        calls.append(("openai", model, reply.usage))
    message = ant.messages.create(model="claude-haiku-4-5", max_tokens=60, extra_headers={"x-costplane-run": "run-gw"},
                                  messages=[{"role": "user", "content": "Summarise the ticket."}])
    calls.append(("anthropic", "claude-haiku-4-5", message.usage))
    gateway_events = server.app.store.run_events("run-gw")
    assert len(gateway_events) == 4 and gateway_events[1].usage.cache_read_tokens > 0  # the cache was hit

    exporter = Tee(OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", headers={"authorization": f"Bearer {key}"},
                                    timeout=10))
    provider = TracerProvider(resource=Resource.create({"service.name": "support-svc"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))  # one batch: children inherit the agent
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("invoke_agent support-bot", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support-bot",
            "gen_ai.conversation.id": "conv-7"}) as agent_span:
        for system, model, usage in calls:
            if system == "openai":
                cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0
                attrs = {"gen_ai.usage.input_tokens": usage.prompt_tokens,
                         "gen_ai.usage.output_tokens": usage.completion_tokens,
                         "gen_ai.usage.cache_read.input_tokens": cached or 0}
            else:  # semconv: input tokens INCLUDE the cache reads and writes
                read, write = usage.cache_read_input_tokens or 0, usage.cache_creation_input_tokens or 0
                attrs = {"gen_ai.usage.input_tokens": usage.input_tokens + read + write,
                         "gen_ai.usage.output_tokens": usage.output_tokens,
                         "gen_ai.usage.cache_read.input_tokens": read,
                         "gen_ai.usage.cache_creation.input_tokens": write}
            with tracer.start_as_current_span(f"chat {model}", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": system, "gen_ai.request.model": model,
                    "gen_ai.response.model": model, **attrs}):
                pass
        with tracer.start_as_current_span("execute_tool kb_search", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "kb_search"}):
            pass
    provider.force_flush()
    assert exporter.results and all(r == SpanExportResult.SUCCESS for r in exporter.results)

    trace_id = format(agent_span.get_span_context().trace_id, "032x")
    otlp_events = server.app.store.run_events(trace_id)
    assert len(otlp_events) == 4
    assert [e.cost_nano for e in otlp_events] == [e.cost_nano for e in gateway_events]
    assert [e.usage for e in otlp_events] == [e.usage for e in gateway_events]
    assert sum(e.cost_nano for e in otlp_events) == sum(e.cost_nano for e in gateway_events)
    first = otlp_events[0].context
    assert (first.agent, first.team, first.trace, first.tags["service"], first.tags["conversation"]) == (
        "support-bot", "ml", trace_id, "support-svc", "conv-7")

    tree = build_tree(server.app.store, trace_id)
    assert tree is not None and tree.name == "support-svc"
    (agent,) = tree.children
    assert agent.kind == "agent" and agent.name == "invoke_agent support-bot"
    assert [c.kind for c in agent.children] == ["llm", "llm", "llm", "llm", "tool"]
    assert tree.total_cost_nano == sum(e.cost_nano for e in gateway_events)

    # idempotent by span id: the same spans again change nothing
    before = server.app.store.count_events()
    assert exporter.inner.export(exporter.spans) == SpanExportResult.SUCCESS
    assert server.app.store.count_events() == before
    assert len(server.app.store.run_nodes(trace_id)) == 3  # root, agent, tool: LLM calls are events below them
    provider.shutdown()


def _json_span(span_id: str, attrs: dict[str, Any], parent: str = "") -> dict[str, Any]:
    def value(v: Any) -> dict[str, Any]:
        return {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}

    return {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": span_id, "parentSpanId": parent,
            "name": "chat", "startTimeUnixNano": "1763800000000000000", "endTimeUnixNano": "1763800001500000000",
            "attributes": [{"key": k, "value": value(v)} for k, v in attrs.items()]}


def test_json_with_alias_names_and_unpriced_spans(make_server: Callable[..., Server]) -> None:
    server = make_server()
    key = server.key()
    payload = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "legacy app"}},
        {"key": "costplane.team", "value": {"stringValue": "search"}}]},
        "scopeSpans": [{"spans": [
            _json_span("eee19b7ec3c1b174", {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
                                            "gen_ai.usage.prompt_tokens": 1000,
                                            "gen_ai.usage.completion_tokens": 200}),
            _json_span("eee19b7ec3c1b175", {"gen_ai.system": "openai", "gen_ai.request.model": "no-such-model-x",
                                            "llm.usage.prompt_tokens": 10, "llm.usage.completion_tokens": 1}),
        ]}]}]}
    headers = {"authorization": f"Bearer {key}"}
    reply = httpx.post(f"{server.url}/v1/traces", json=payload, headers=headers, timeout=10)
    assert reply.status_code == 200, reply.text
    partial = reply.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "no-such-model-x" in partial["errorMessage"]
    (event,) = server.app.store.run_events("5b8efff798038103d269b633813fc60c")
    price = server.app.catalog.resolve("gpt-4o-mini", "openai")
    assert event.cost_nano == price.cost_nano(event.usage) == 270_000  # 1000 × 0.15 + 200 × 0.6 per million
    assert event.context.team == "search" and event.context.tags["service"] == "legacy-app"
    assert event.latency_ms == 1500
    nodes = {n.id: n for n in server.app.store.run_nodes("5b8efff798038103d269b633813fc60c")}
    assert nodes["eee19b7ec3c1b175"].status == "unpriced"  # recorded, never charged $0

    bad = httpx.post(f"{server.url}/v1/traces", content=b'{"resourceSpans": [{"scopeSpans": [{"spans": '
                     b'[{"traceId": "zz", "spanId": "01"}]}]}]}',
                     headers={**headers, "content-type": "application/json"}, timeout=10)
    assert bad.status_code == 400 and "resourceSpans[0].scopeSpans[0].spans[0].traceId" in bad.text
    assert httpx.post(f"{server.url}/v1/traces", json=payload, timeout=10).status_code == 401
    wrong = httpx.post(f"{server.url}/v1/traces", content=b"x", headers={**headers, "content-type": "text/plain"},
                       timeout=10)
    assert wrong.status_code == 415
