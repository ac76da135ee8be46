"""OTLP ingest throughput: GenAI spans per second through the receiver, in one process.

    .venv/bin/python benchmarks/bench_otlp.py                 # 100,000 spans in batches of 512
    .venv/bin/python benchmarks/bench_otlp.py --spans 20000 --batch 1000 --http

Builds OTLP ExportTraceServiceRequest protobufs (the wire format of the OpenTelemetry
exporters): traces of one `invoke_agent` span with chat spans below it, semconv v1.41
attributes, 4 models. Then measures, on a fresh SQLite store (WAL, synchronous=NORMAL):

* in-process: `OtlpIngestor` — protobuf decode, attribute mapping, pricing with the Catalog,
  attribution, run-tree nodes and cost events written in one transaction per batch;
* --http: the same payloads POSTed to the real server (`POST /v1/traces`) on 127.0.0.1 with
  one client connection (so it includes uvicorn, the key check and the HTTP round trip).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from costplane.app import Application
from costplane.config import parse_config
from costplane.otel.decode import decode_protobuf
from costplane.otel.receiver import OtlpIngestor

MODELS = (("openai", "gpt-4o-mini"), ("openai", "gpt-4o"), ("anthropic", "claude-haiku-4-5"),
          ("anthropic", "claude-sonnet-4-5"))


def _kv(key: str, value: str | int) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(int_value=value) if isinstance(value, int) else AnyValue(
        string_value=value))


def payload(n: int, rng: random.Random) -> bytes:
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    resource.resource.attributes.extend([_kv("service.name", "bench-agents"), _kv("deployment.environment", "prod")])
    spans = resource.scope_spans.add().spans
    trace = b""
    agent = b""
    for i in range(n):
        span = spans.add()
        if i % 8 == 0:
            trace = rng.randbytes(16)
            agent = rng.randbytes(8)
            span.trace_id, span.span_id, span.name = trace, agent, "invoke_agent support-bot"
            span.attributes.extend([_kv("gen_ai.operation.name", "invoke_agent"),
                                    _kv("gen_ai.agent.name", "support-bot"), _kv("gen_ai.conversation.id", "c-1")])
        else:
            system, model = MODELS[i % len(MODELS)]
            span.trace_id, span.span_id, span.parent_span_id = trace, rng.randbytes(8), agent
            span.name = f"chat {model}"
            span.attributes.extend([
                _kv("gen_ai.operation.name", "chat"), _kv("gen_ai.provider.name", system),
                _kv("gen_ai.request.model", model), _kv("gen_ai.response.model", model),
                _kv("gen_ai.usage.input_tokens", rng.randint(200, 4000)),
                _kv("gen_ai.usage.output_tokens", rng.randint(10, 600)),
                _kv("gen_ai.usage.cache_read.input_tokens", rng.choice((0, 0, 128)))])
        span.start_time_unix_nano = 1_763_800_000_000_000_000 + i * 1000
        span.end_time_unix_nano = span.start_time_unix_nano + 900_000_000
    return request.SerializeToString()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--http", action="store_true", help="also measure POST /v1/traces over HTTP")
    args = parser.parse_args()
    rng = random.Random(42)
    batches = [payload(args.batch, rng) for _ in range(max(1, args.spans // args.batch))]
    total = len(batches) * args.batch
    with tempfile.TemporaryDirectory() as tmp:
        app = Application(parse_config({"store": f"sqlite:///{tmp}/bench.db"}, base=Path(tmp)))
        ingestor = OtlpIngestor(app)
        ingestor.ingest(decode_protobuf(payload(64, random.Random(1))), None)  # warm-up (catalog caches)
        started = time.perf_counter()
        for body in batches:
            ingestor.ingest(decode_protobuf(body), None)
        elapsed = time.perf_counter() - started
        print(f"in-process: {total:,} spans in {elapsed:.2f} s = {total / elapsed:,.0f} spans/s "
              f"(batches of {args.batch})")
        print(f"  ({app.store.count_events():,} cost events stored)")
        decode_start = time.perf_counter()
        for body in batches:
            decode_protobuf(body)
        print(f"  of which protobuf decode: {total / (time.perf_counter() - decode_start):,.0f} spans/s")
        app.close()
    if args.http:
        _http(batches, args.batch)


def _http(batches: list[bytes], size: int) -> None:
    import httpx

    from costplane.gateway.keys import create_key
    from costplane.server import create_server
    from costplane.serving import BackgroundServer

    with tempfile.TemporaryDirectory() as tmp:
        app = Application(parse_config({"store": f"sqlite:///{tmp}/bench.db"}, base=Path(tmp)))
        secret, _ = create_key(app.store, "bench", {})
        with BackgroundServer(create_server(app)) as server, httpx.Client(timeout=60) as client:
            headers = {"authorization": f"Bearer {secret}", "content-type": "application/x-protobuf"}
            client.post(f"{server.url}/v1/traces", content=payload(64, random.Random(1)), headers=headers)
            started = time.perf_counter()
            for body in batches:
                reply = client.post(f"{server.url}/v1/traces", content=body, headers=headers)
                reply.raise_for_status()
            elapsed = time.perf_counter() - started
        total = len(batches) * size
        print(f"HTTP POST /v1/traces: {total:,} spans in {elapsed:.2f} s = {total / elapsed:,.0f} spans/s")
        app.close()


if __name__ == "__main__":
    os.environ.setdefault("COSTPLANE_LOG", "warning")
    main()
