"""Counted once: an OpenAI client instrumented with OpenTelemetry, pointed at the gateway, exports
its spans (real SDK, OTLP/HTTP exporter) to the same costplane's `/v1/traces`: spend rises by
exactly the gateway's cost of each call, plain and streamed, with each of the three common GenAI
instrumentations that is installed — the official `opentelemetry-instrumentation-openai-v2`,
OpenLLMetry's `opentelemetry-instrumentation-openai` and OpenInference's
`openinference-instrumentation-openai`.

Each instrumentation runs in its own interpreter (they patch the `openai` module and read their
environment once)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable

import pytest

from costplane.ledger.types import CostEvent
from run_harness import Server

from .call_ids import wait_for_ids

INSTRUMENTATIONS = {
    "openai-v2": "opentelemetry.instrumentation.openai_v2",
    "openllmetry": "opentelemetry.instrumentation.openai",
    "openinference": "openinference.instrumentation.openai",
}

SCRIPT = textwrap.dedent("""
    import importlib, sys
    import openai
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    server, key, module = sys.argv[1:4]
    provider = TracerProvider(resource=Resource.create({"service.name": "instrumented-app"}))
    exporter = OTLPSpanExporter(endpoint=server + "/v1/traces", headers={"authorization": "Bearer " + key})
    provider.add_span_processor(BatchSpanProcessor(exporter))
    importlib.import_module(module).OpenAIInstrumentor().instrument(tracer_provider=provider)
    client = openai.OpenAI(base_url=server + "/v1", api_key=key, max_retries=0, timeout=30)
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("handle request") as root:
        plain = client.chat.completions.create(model="gpt-4o-mini", max_tokens=40,
                                               messages=[{"role": "user", "content": "Where is parcel 41?"}])
        stream = client.chat.completions.create(model="gpt-4o-mini", stream=True, max_tokens=40,
                                                messages=[{"role": "user", "content": "And parcel 42?"}])
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    provider.force_flush()
    provider.shutdown()
    print(format(root.get_span_context().trace_id, "032x"), plain.id, len(text))
""")


def _spend(server: Server) -> int:
    return sum(row.cost_nano for row in server.app.store.spend())


def _events(server: Server) -> list[CostEvent]:
    return server.app.store.list_events(limit=100)


@pytest.mark.parametrize("name", list(INSTRUMENTATIONS))
def test_instrumented_client_through_the_gateway_counts_each_call_once(
        name: str, make_server: Callable[..., Server]) -> None:
    module = INSTRUMENTATIONS[name]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")
    server = make_server()
    key = server.key(team="apps")
    assert _spend(server) == 0
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACELOOP_"))}
    environment["TRACELOOP_TELEMETRY"] = "false"
    done = subprocess.run([sys.executable, "-c", SCRIPT, server.url, key, module], env=environment,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    trace, plain_id, chars = done.stdout.split()
    assert int(chars) > 0

    wait_for_ids(server.app.store, calls=2)  # written by the gateway's background writer
    events = _events(server)
    gateway = [e for e in events if not e.id.startswith("otel-")]
    spans = [e for e in events if e.id.startswith("otel-")]
    assert len(gateway) == 2 and all(e.status == "ok" and e.cost_nano > 0 for e in gateway)
    assert {e.response_id for e in gateway} >= {plain_id}  # the gateway recorded the provider's id
    assert all(e.status == "superseded" and e.cost_nano == 0 for e in spans)  # none counted (if recorded)
    assert _spend(server) == sum(e.cost_nano for e in gateway)  # exactly one call's cost per call
    # the spans did arrive (the app's own span is a node of the trace's run tree) and both LLM spans
    # were linked to the gateway's events (or, had one beaten the gateway's id writer, superseded)
    nodes = server.app.store.run_nodes(trace)
    assert "handle request" in {n.name for n in nodes} and not [n for n in nodes if n.kind == "llm"]
    assert all(server.app.store.get_event(e.id).status == "superseded"  # type: ignore[union-attr]
               for e in server.app.store.run_events(trace))
