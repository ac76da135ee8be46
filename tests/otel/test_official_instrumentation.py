"""The official OpenTelemetry OpenAI instrumentation (`opentelemetry-instrumentation-openai-v2`) on a
streamed call without `include_usage`: its span has a model and no usage. Exported with the SDK's
OTLP/HTTP exporter to costplane, it is `unpriced` (with a warning) when content capture is off and
`estimated` from the captured messages when it is on — never `ok` at $0.

Each mode runs in its own interpreter: the instrumentation reads its environment once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable

import pytest

from costplane.serving import BackgroundServer
from run_harness import Server

pytest.importorskip("opentelemetry.instrumentation.openai_v2")

SCRIPT = textwrap.dedent("""
    import sys
    import openai
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    simulator, receiver, key = sys.argv[1:4]
    provider = TracerProvider(resource=Resource.create({"service.name": "instrumented-app"}))
    exporter = OTLPSpanExporter(endpoint=receiver + "/v1/traces", headers={"authorization": "Bearer " + key})
    provider.add_span_processor(BatchSpanProcessor(exporter))
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    client = openai.OpenAI(base_url=simulator + "/v1", api_key="sk-test", max_retries=0)
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("handle request") as root:
        stream = client.chat.completions.create(model="gpt-4o-mini", stream=True, max_tokens=50,
                                                messages=[{"role": "user", "content": "Where is parcel 41?"}])
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    provider.force_flush()
    provider.shutdown()
    print(format(root.get_span_context().trace_id, "032x"), len(text))
""")


def _run(simulator: BackgroundServer, server: Server, key: str, env: dict[str, str]) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environment.update(env)
    done = subprocess.run([sys.executable, "-c", SCRIPT, simulator.url, server.url, key], env=environment,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    trace, chars = done.stdout.split()
    assert int(chars) > 0  # the stream was read
    return trace


def test_official_instrumentation_stream_without_usage(simulator: BackgroundServer,
                                                       make_server: Callable[..., Server]) -> None:
    server = make_server()
    key = server.key(team="apps")

    bare = _run(simulator, server, key, {})
    (event,) = server.app.store.run_events(bare)
    assert (event.model, event.status, event.cost_nano) == ("gpt-4o-mini", "unpriced", 0)
    assert event.context.team == "apps" and event.context.tags["service"] == "instrumented-app"

    captured = _run(simulator, server, key, {"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
                                             "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_only"})
    (event,) = server.app.store.run_events(captured)
    assert event.status == "estimated" and event.cost_nano > 0
    assert event.usage.input_tokens > len("Where is parcel 41?") and event.usage.output_tokens > 0
    price = server.app.catalog.resolve("gpt-4o-mini", "openai")
    assert event.cost_nano == price.cost_nano(event.usage)
