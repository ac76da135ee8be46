"""Throughput of the upstream simulator alone (zero latency), with aiohttp as the client.

    .venv/bin/python benchmarks/bench_simulator.py [--requests 3000] [--concurrency 32] [--url URL]

Without --url the simulator runs in a thread of this process (sharing the GIL with the client,
so the numbers are a lower bound); with --url it measures a separately started
`costplane simulate-upstream`.

The gateway benchmark runs against this simulator, so the simulator must be much faster than
the gateway: this prints requests/s and latency percentiles per endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import aiohttp

from costplane.serving import BackgroundServer
from costplane.simulator import SimulatorConfig, create_app

_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "openai chat": ("/v1/chat/completions", {
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "How much did we spend?"}]}),
    "openai chat stream": ("/v1/chat/completions", {
        "model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "How much did we spend?"}]}),
    "anthropic messages": ("/v1/messages", {
        "model": "claude-haiku-4-5", "max_tokens": 256,
        "messages": [{"role": "user", "content": "How much did we spend?"}]}),
    "embeddings (256 dims)": ("/v1/embeddings", {
        "model": "text-embedding-3-small", "input": "quarterly spend", "dimensions": 256}),
}


async def _run(url: str, body: dict[str, Any], requests: int, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                started = time.perf_counter()
                async with session.post(url, json=body) as response:
                    await response.read()
                    assert response.status == 200, response.status
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--url", help="base URL of a running simulator (default: start one in-process)")
    args = parser.parse_args()
    if args.url:
        _bench(args.url.rstrip("/"), args.requests, args.concurrency)
        return
    with BackgroundServer(create_app(SimulatorConfig(record_requests=0))) as server:
        _bench(server.url, args.requests, args.concurrency)


def _bench(base_url: str, requests: int, concurrency: int) -> None:
    for name, (path, body) in _CASES.items():
        elapsed, latencies = asyncio.run(_run(base_url + path, body, requests, concurrency))
        latencies.sort()
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(f"{name:24s} {requests / elapsed:8.0f} req/s   "
              f"p50 {statistics.median(latencies) * 1000:6.2f} ms   p99 {p99 * 1000:6.2f} ms")


if __name__ == "__main__":
    main()
