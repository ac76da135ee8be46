"""Governance CPU per request, in process: the gateway's ASGI app called directly, no sockets.

    .venv/bin/python benchmarks/bench_governance.py                       # SQLite, hot-team, leases on
    .venv/bin/python benchmarks/bench_governance.py --bundle every-limit
    .venv/bin/python benchmarks/bench_governance.py --store postgres      # schema bench_<random>
    .venv/bin/python benchmarks/bench_governance.py --concurrency 50      # 50 requests in flight at once
    .venv/bin/python benchmarks/bench_governance.py --cprofile 30         # + the 30 costliest functions
    .venv/bin/python benchmarks/bench_governance.py --cprofile 30 --callers "urandom|execute"

What `bench_gateway.py` cannot separate: the HTTP server, the sockets and the upstream client are
the same for the gateway and the pass-through, and the machine's noise is larger than most changes
to the governance itself. Here both apps are called as ASGI callables by the benchmark's own event
loop, with the same canned upstream answer (a gpt-4o-mini chat completion with its usage, returned
by an in-memory transport behind the gateway's `UpstreamTransport` interface), so what differs is
only what the gateway does for a governed call: authentication, attribution, policies, the budget
ledger, pricing, metering, the decision log and the cost headers.

* **baseline**: a Starlette app with one route that reads the body, awaits the same transport and
  answers with its bytes (the in-process part of `passthrough.py`);
* **gateway**: `create_gateway(Application(config))` with the bench bundle (`bench_gateway.py`'s
  BUNDLES: hot-team or every-limit), a key, a run id per request (64 runs), unique prompts.

Rounds alternate baseline and gateway (`--rounds`, default 3); each reports the process's CPU time
(user + system, every thread: the lease writer's batches and the store's included) and the wall time
per request. The figure to compare builds with is the gateway's CPU per request and its difference
to the baseline, medians over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_gateway import BUNDLES, DEFAULT_PG

from costplane.app import Application
from costplane.config import load_config
from costplane.gateway.app import create_gateway
from costplane.gateway.upstream import UpstreamResponse
from costplane.ledger.open import open_store

ANSWER = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1_765_000_000, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine " * 12}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 21, "completion_tokens": 12, "total_tokens": 33}}).encode()

ASGI = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]],
                 Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]


class CannedResponse(UpstreamResponse):
    """The upstream's answer, already in memory."""

    async def read(self) -> bytes:
        return ANSWER

    def close(self) -> None:
        return None


class CannedTransport:
    """`UpstreamTransport` answering every call with ANSWER at once."""

    async def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                   timeout: float) -> UpstreamResponse:
        return CannedResponse(200, {"content-type": "application/json"}, None)  # type: ignore[arg-type]

    async def post(self, url: str, headers: Mapping[str, str], body: bytes, timeout: float) -> UpstreamResponse:
        return await self.send("POST", url, headers, body, timeout)

    async def get(self, url: str, headers: Mapping[str, str], timeout: float) -> UpstreamResponse:
        return await self.send("GET", url, headers, None, timeout)

    async def close(self) -> None:
        return None


def baseline_app(transport: CannedTransport) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def forward(request: Request) -> Response:
        body = await request.body()
        answer = await transport.post("http://upstream/v1/chat/completions", {}, body, 60.0)
        return Response(await answer.read(), answer.status, media_type="application/json")

    return Starlette(routes=[Route("/v1/chat/completions", forward, methods=["POST"])])


def request_scope(key: str, number: int) -> tuple[dict[str, Any], bytes]:
    prompt = f"Summarise ticket {number} in one line, please, for the weekly report."
    body = json.dumps({"model": "gpt-4o-mini", "max_tokens": 16,
                       "messages": [{"role": "user", "content": prompt}]}).encode()
    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
               (b"authorization", f"Bearer {key}".encode()), (b"x-costplane-run", f"run-{number % 64}".encode()),
               (b"content-length", str(len(body)).encode())]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions", "query_string": b"",
             "root_path": "", "headers": headers, "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8080)}
    return scope, body


async def call(app: ASGI, key: str, number: int) -> int:
    scope, body = request_scope(key, number)
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # the client never disconnects
        return {"type": "http.disconnect"}

    status = [0]

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]

    await app(scope, receive, send)
    return status[0]


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each live thread of this process, by thread name."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = "event loop" if thread is threading.main_thread() else thread.name.rstrip("0123456789_-")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return out


async def measure(app: ASGI, key: str, first: int, count: int, concurrency: int) -> tuple[float, float]:
    """(CPU s, wall s) of `count` requests, `concurrency` at a time; every one must answer 200."""
    numbers = iter(range(first, first + count))
    bad: list[int] = []

    async def worker() -> None:
        for number in numbers:
            status = await call(app, key, number)
            if status != 200:
                bad.append(status)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if bad:
        raise SystemExit(f"{len(bad)} request(s) were not answered 200: {sorted(set(bad))}")
    return cpu, wall


def setup(args: argparse.Namespace, workdir: Path) -> tuple[Path, str, str]:
    (workdir / "bundle").mkdir()
    (workdir / "bundle" / "bench.yaml").write_text(BUNDLES[args.bundle], encoding="utf-8")
    if args.store == "postgres":
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        import psycopg

        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        store = f"{args.pg}{'&' if '?' in args.pg else '?'}schema={schema}"
    else:
        schema, store = "", f"sqlite:///{workdir / 'bench.db'}"
    config = workdir / "costplane.yaml"
    config.write_text(f"""server: {{host: 127.0.0.1, port: 8080}}
store: "{store}"
bundle: bundle
ledger: {{leases: {args.leases}, journal: {workdir / 'journal'}}}
gateway:
  reload_interval: 60s
providers:
  openai:
    type: openai
    base_url: http://127.0.0.1:9/v1
    models: ["gpt-*", "o*"]
""", encoding="utf-8")
    created = subprocess.run([sys.executable, "-m", "costplane", "keys", "create", "--name", "bench", "--team", "bench",
                              "--config", str(config)], capture_output=True, text=True, timeout=120, check=False)
    if created.returncode != 0:
        raise SystemExit(f"keys create failed:\n{created.stdout}\n{created.stderr}")
    return config, schema, created.stdout.strip().splitlines()[-1].strip()


async def run(args: argparse.Namespace, config: Path, key: str) -> None:
    transport = CannedTransport()
    application = Application(load_config(config))
    gateway = create_gateway(application, transport=transport)
    baseline = baseline_app(transport)
    rows: dict[str, list[tuple[float, float]]] = {"baseline": [], "gateway": []}
    async with gateway.router.lifespan_context(gateway):
        for number in range(args.warmup):  # a cold window takes the direct path, then the lease; imports
            assert await call(gateway, key, number) == 200
            assert await call(baseline, key, number) == 200
        first = args.warmup
        threads_before = thread_cpu()
        for _ in range(args.rounds):
            for name, app in (("baseline", baseline), ("gateway", gateway)):
                rows[name].append(await measure(app, key, first, args.requests, args.concurrency))
                first += args.requests
        threads = {name: cpu - threads_before.get(name, 0.0) for name, cpu in thread_cpu().items()}
        if args.cprofile:
            profile = cProfile.Profile()
            profile.enable()
            await measure(gateway, key, first, args.requests, args.concurrency)
            profile.disable()
    n = args.requests
    print(f"## governance in process — store {args.store}, bundle {args.bundle}, leases {args.leases}, "
          f"{n:,} requests per round x {args.rounds} rounds, concurrency {args.concurrency}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print()
    print("| app | CPU µs/request, rounds | wall µs/request, rounds | CPU µs/request, median |")
    print("|---|---|---|---:|")
    for name, got in rows.items():
        cpus = " / ".join(f"{1e6 * c / n:.1f}" for c, _ in got)
        walls = " / ".join(f"{1e6 * w / n:.1f}" for _, w in got)
        print(f"| {name} | {cpus} | {walls} | {1e6 * statistics.median(c for c, _ in got) / n:.1f} |")
    base = statistics.median(c for c, _ in rows["baseline"]) / n
    gov = statistics.median(c for c, _ in rows["gateway"]) / n
    print()
    print(f"governance (gateway − baseline): {1e6 * (gov - base):.1f} µs CPU per request; "
          f"gateway / baseline {gov / base:.2f}×")
    print()
    print("CPU by thread over all rounds (baseline and gateway), µs per gateway request: " + ", ".join(
        f"{name} {1e6 * cpu / (n * args.rounds):.1f}" for name, cpu in sorted(threads.items(), key=lambda t: -t[1])
        if cpu > 0))
    calls = args.warmup + n * (args.rounds + (1 if args.cprofile else 0))
    store = open_store(application.config.store_url)
    events = store.count_events()
    store.close()
    print(f"metering check: {'OK' if events == calls else 'MISMATCH'} — {calls:,} gateway calls answered 200, "
          f"{events:,} cost events in the store")
    if args.cprofile:
        print()
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(args.cprofile)
        if args.callers:
            stats.print_callers(args.callers)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000, help="requests per round (default 10,000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=1, help="requests in flight at once (default 1)")
    parser.add_argument("--bundle", choices=sorted(BUNDLES), default="hot-team")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg", default=os.environ.get("COSTPLANE_TEST_PG", DEFAULT_PG))
    parser.add_argument("--leases", choices=("on", "off"), default="on")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N",
                        help="one more gateway round under cProfile; print its N costliest functions")
    parser.add_argument("--keep", default="", metavar="DIR", help="work in DIR and keep it (config, database)")
    parser.add_argument("--callers", default="", metavar="REGEX",
                        help="with --cprofile: also who called the functions matching REGEX")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="costplane-bench-gov-") as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        config, schema, key = setup(args, workdir)
        try:
            asyncio.run(run(args, config, key))
        finally:
            if schema:
                import psycopg

                with psycopg.connect(args.pg, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
