"""Gateway benchmark: added latency and throughput of the governed gateway, measured with wrk.

    .venv/bin/python benchmarks/bench_gateway.py                      # SQLite, 10 s, 1 and 50 connections
    .venv/bin/python benchmarks/bench_gateway.py --store postgres     # PostgreSQL (throw-away schema)
    .venv/bin/python benchmarks/bench_gateway.py --duration 5 --connections 1,10,50
    .venv/bin/python benchmarks/bench_gateway.py --profile /tmp/gw-profile   # + py-spy breakdown

Three processes, all bound to 127.0.0.1: the upstream simulator (`costplane simulate-upstream`,
zero latency), the gateway (`python -m costplane serve`, i.e. uvicorn.run with loop/http "auto",
which picks uvloop and httptools when installed) and wrk. wrk runs benchmarks/gateway_load.lua:
a non-streamed gpt-4o-mini chat completion (~20-token prompt, max_tokens 16) with a bench key.
For every connection count it measures (a) the simulator directly and (b) the same requests
through the gateway, after a short warm-up of each; "added" = gateway minus direct.

Governance is fully on: 4 policies (deny, route, mutate, allow — each `when` is evaluated on
every request, the mutate matches), a hard team budget (1,000,000 USD: never denies), a per-run
budget (`per: [run]`), a per-key concurrency limit (256) and the loop detector. After the run it
checks that every 200 wrk counted was metered (cost events in the store) and that no reservation
is left open.

--profile DIR additionally runs one more loaded gateway period at the largest connection count
under `py-spy record` (pip install py-spy) and prints a breakdown of gateway CPU by component.
PostgreSQL comes from --pg or env COSTPLANE_TEST_PG (default postgresql://postgres@127.0.0.1:5432/test);
the benchmark creates and drops schema bench_<random>.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LUA = HERE / "gateway_load.lua"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
HOST = "127.0.0.1"
WARMUP_S = 2

BUNDLE = """\
kind: Policy
name: block-huge-outputs
on: llm.request
when: request.max_tokens > 100000
effect: deny
reason: no single call may ask for more than 100k output tokens
---
kind: Policy
name: experiments-use-small-models
on: llm.request
when: ctx.tier == "experiment" && request.model == "gpt-4o" && request.input_tokens < 4000
effect: route
set: {model: gpt-4o-mini}
priority: 10
reason: experiment tier uses gpt-4o-mini for short prompts
---
kind: Policy
name: cap-bench-output
on: llm.request
when: ctx.team == "bench"
effect: mutate
set: {max_tokens: 64}
reason: bench traffic is capped at 64 output tokens
---
kind: Policy
name: allow-known-teams
on: llm.request
when: ctx.team in ["bench", "ml", "web"] && !request.stream
effect: allow
---
kind: Budget
name: team-bench-monthly
scope: ctx.team == "bench"
amount: 1000000 USD
window: {calendar: month, timezone: Europe/Berlin}
enforcement: hard
---
kind: Budget
name: per-run
per: [run]
amount: 1000 USD
window: lifetime
enforcement: hard
---
kind: Budget
name: per-key-concurrency
per: [key]
max_concurrent: 256
"""

CONFIG = """\
server: {{host: {host}, port: {port}}}
store: "{store}"
bundle: bundle
gateway:
  reload_interval: 60s
providers:
  openai:
    type: openai
    base_url: http://{host}:{sim_port}/v1
    models: ["gpt-*", "o*"]
"""


@dataclass
class WrkResult:
    target: str
    connections: int
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[int, int]
    errors: dict[str, int]

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)


@dataclass
class Processes:
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text(errors="replace")
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{text}")
        try:
            with urllib.request.urlopen(url, timeout=1.0):
                return
        except urllib.error.HTTPError:
            return  # it answers: up
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout_s:g}s; log: {log}")


def python_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "costplane", *args]


def run_wrk(url: str, key: str, connections: int, duration: int, target: str, rate: int = 0) -> WrkResult:
    """One wrk run. rate > 0 paces the connections to offer about `rate` requests/s in all."""
    threads = 1 if connections == 1 else 2
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s",
            "-s", str(LUA), url]
    env = {**os.environ, "COSTPLANE_KEY": key}
    if rate > 0:
        env["COSTPLANE_DELAY_MS"] = str(max(1, connections * 1000 // rate))
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=duration + 60, check=False)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("COSTPLANE_WRK ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    data: dict[str, Any] = json.loads(line.split(" ", 1)[1])
    return WrkResult(
        target=target, connections=connections, requests=int(data["requests"]),
        duration_s=data["duration_us"] / 1e6, p50_ms=data["p50_us"] / 1e3, p90_ms=data["p90_us"] / 1e3,
        p99_ms=data["p99_us"] / 1e3, max_ms=data["max_us"] / 1e3,
        statuses={int(k): int(v) for k, v in data["statuses"].items()}, errors=dict(data["errors"]),
    )


# -- store ------------------------------------------------------------------------------------------

@contextlib.contextmanager
def store_url(kind: str, workdir: Path, pg: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    import psycopg

    schema = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in pg else "?"
    try:
        yield f"{pg}{sep}schema={schema}"
    finally:
        with psycopg.connect(pg, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def store_counts(url: str) -> tuple[int, int]:
    """(cost events, open reservations) as the store sees them now."""
    from costplane.ledger.open import open_store

    store = open_store(url)
    try:
        return store.count_events(), store.open_reservations()
    finally:
        store.close()


# -- profile ------------------------------------------------------------------------------------------

_RESPONSE = "response building (starlette Response, headers, money format)"
#: (category, file-path fragment or None, function name or None); first match walking leaf -> root.
_RULES: tuple[tuple[str, str | None, str | None], ...] = (
    ("logging", "/logging/", None),
    ("store", "/sqlite3/", None),
    ("store", "/psycopg/", None),
    ("stdlib json", "/json/", None),
    ("ids & timestamps (uuid4, datetime.now)", "/uuid.py", None),
    ("ids & timestamps (uuid4, datetime.now)", "costplane/core/decision.py", "new_id"),
    ("ids & timestamps (uuid4, datetime.now)", "costplane/core/decision.py", "_utcnow"),
    ("store", "costplane/ledger/", None),
    ("auth / key lookup", "costplane/gateway/keys.py", None),
    ("context resolution", "costplane/attribution/", None),
    ("policy engine (CEL)", "costplane/policy/", None),
    ("pricing", "costplane/pricing/", None),
    ("pricing", "/genai_prices/", None),
    ("budget claims & windows", "costplane/core/claims.py", None),
    ("decision/event records", "costplane/core/decision.py", "_record"),
    ("decision/event records", "costplane/core/decision.py", "_event"),
    ("token estimate & request hash", "costplane/gateway/tokens.py", None),
    ("token estimate & request hash", "costplane/gateway/endpoints.py", None),
    ("usage metering", "costplane/gateway/metering.py", None),
    ("upstream aiohttp client", "/aiohttp/", None),
    ("upstream aiohttp client", "/yarl/", None),
    ("upstream aiohttp client", "/multidict/", None),
    ("upstream aiohttp client", "costplane/gateway/upstream.py", None),
    (_RESPONSE, "/starlette/responses.py", None),
    (_RESPONSE, "costplane/money.py", None),
    (_RESPONSE, "costplane/gateway/proxy.py", "_headers"),
    ("starlette routing/request", "/starlette/", None),
    ("HTTP parsing / uvicorn protocol", "/uvicorn/protocols/", None),
    ("HTTP parsing / uvicorn protocol", "/httptools/", None),
    ("decision core (other)", "costplane/core/", None),
    ("gateway proxy (other)", "costplane/gateway/", None),
    ("event loop & socket I/O (uvloop/asyncio)", "/asyncio/", None),
    ("event loop & socket I/O (uvloop/asyncio)", "/uvloop/", None),
    ("event loop & socket I/O (uvloop/asyncio)", "/uvicorn/", None),
)
_STORE_METHODS = (("reserve", "store reserve transaction"), ("settle", "store settle transaction"),
                  ("key_by_hash", "auth / key lookup (store)"),
                  ("count_recent_requests", "loop detector query"),
                  ("release", "store release"), ("expire_reservations", "reservation expiry sweep"),
                  ("_checkpoint_loop", "SQLite WAL checkpoint thread"), ("_conn", "store connection"))
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")
_source_cache: dict[str, list[str]] = {}


def _source_line(path: str, line: int) -> str:
    if path not in _source_cache:
        try:
            _source_cache[path] = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError:
            _source_cache[path] = []
    lines = _source_cache[path]
    return lines[line - 1] if 0 < line <= len(lines) else ""


def categorise(frames: list[tuple[str, str, int]]) -> str:
    """Category of one sampled stack (root first); the innermost recognised frame decides."""
    if not frames:
        return "other"
    leaf_func, leaf_path, leaf_line = frames[-1]
    in_store = any("costplane/ledger/" in p for _, p, _ in frames)
    leaf_text = (_source_line(leaf_path, leaf_line), leaf_func, leaf_path)
    if not in_store and any("orjson" in x for x in leaf_text):
        return "JSON (orjson) in the gateway"
    for func, path, _ in reversed(frames):
        short = func.rsplit(".", 1)[-1]
        for category, fragment, name in _RULES:
            if (fragment is None or fragment in path) and (name is None or short == name):
                if category == "store" or (in_store and category == "stdlib json"):
                    return _store_label(frames)
                return category
    return "other (interpreter, idle wake-ups)"


def _store_label(frames: list[tuple[str, str, int]]) -> str:
    label = "store, method unknown (py-spy stack truncated)"
    for method, name in _STORE_METHODS:
        if any(f.rsplit(".", 1)[-1] == method and "costplane/ledger/" in p for f, p, _ in frames):
            label = name
            break
    if any("costplane/ledger/codec.py" in p for _, p, _ in frames):
        return f"{label}: row encoding (codec, stdlib json)"
    return f"{label}: SQL + COMMIT"


def profile_breakdown(collapsed: Path, main_thread_only: bool = False) -> tuple[int, list[tuple[str, int]]]:
    totals: Counter[str] = Counter()
    for raw in collapsed.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = raw.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        if main_thread_only and "MainThread" not in stack.split(";", 1)[0]:
            continue
        frames: list[tuple[str, str, int]] = []
        for part in stack.split(";"):
            match = _FRAME.match(part.strip())
            if match is None:
                continue  # process / thread name
            frames.append((match["func"], match["file"], int(match["line"] or 0)))
        totals[categorise(frames)] += int(count)
    total = sum(totals.values())
    return total, totals.most_common()


def run_profile(gw_pid: int, url: str, key: str, connections: int, duration: int,
                out_dir: Path, wall: bool) -> tuple[WrkResult, Path]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    out_dir.mkdir(parents=True, exist_ok=True)
    collapsed = out_dir / "gateway.collapsed.txt"
    speedscope = out_dir / "gateway.speedscope.json"
    log = out_dir / "py-spy.log"
    with log.open("wb") as spy_log:
        spies = [
            subprocess.Popen([py_spy, "record", "--pid", str(gw_pid), "--rate", "250", "--nonblocking",
                              "--full-filenames", *(["--idle", "--threads"] if wall else []),
                              "--duration", str(duration), "--format", fmt,
                              "-o", str(path)],
                             stdout=subprocess.DEVNULL, stderr=spy_log, start_new_session=True)
            for fmt, path in (("raw", collapsed),)
        ]
    try:
        time.sleep(0.5)
        result = run_wrk(url, key, connections, duration, "gateway (under py-spy)")
        for spy in spies:
            spy.wait(timeout=duration + 30)
    finally:
        for spy in spies:
            if spy.poll() is None:
                spy.terminate()
                spy.wait(10)
    if not collapsed.exists():
        raise RuntimeError(f"py-spy wrote no profile (needs ptrace rights); see {log}")
    # The speedscope file is for humans (https://www.speedscope.app); derive it from a short second run.
    subprocess.run([py_spy, "record", "--pid", str(gw_pid), "--rate", "250", "--nonblocking", "--duration",
                    "1", "--format", "speedscope", "-o", str(speedscope)],
                   capture_output=True, timeout=30, check=False)
    return result, collapsed


# -- main ------------------------------------------------------------------------------------------


def fmt_row(r: WrkResult) -> str:
    non200 = {s: n for s, n in r.statuses.items() if s != 200}
    errs = {k: v for k, v in r.errors.items() if v and k != "status"}
    extra = f"  non-200 {non200}" if non200 else ""
    extra += f"  socket errors {errs}" if errs else ""
    return (f"| {r.target:<8} | {r.connections:>5} | {r.rps:>9,.0f} | {r.p50_ms:>7.2f} | {r.p90_ms:>7.2f} | "
            f"{r.p99_ms:>7.2f} | {r.max_ms:>7.2f} | {r.requests:>8,} |{extra}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured wrk run (default 10)")
    parser.add_argument("--connections", default="1,50",
                        help="comma-separated connection counts (default 1,50)")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg", default=os.environ.get("COSTPLANE_TEST_PG", DEFAULT_PG),
                        help="PostgreSQL URL for --store postgres")
    parser.add_argument("--profile", type=Path, default=None,
                        help="directory: also profile the gateway with py-spy at the largest "
                             "connection count")
    parser.add_argument("--wall", action="store_true",
                        help="with --profile: wall-clock of the event-loop thread (py-spy --idle), "
                             "so time blocked in synchronous store calls shows")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (config, logs, db)")
    parser.add_argument("--rate", type=int, default=0,
                        help="offered load in requests/s (paced connections, below saturation); "
                             "default 0 = as fast as possible")
    args = parser.parse_args(argv)
    conns = [int(c) for c in args.connections.split(",") if c.strip()]
    if not 1 <= args.duration <= 600 or not conns or any(not 1 <= c <= 1000 for c in conns):
        parser.error("--duration must be 1..600 s and --connections 1..1000")
    if shutil.which("wrk") is None:
        print("wrk is not installed: it measures the load. Install it with `apt-get install -y wrk` "
              "(Debian/Ubuntu) or `brew install wrk`, then run this again.", file=sys.stderr)
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="costplane-bench-gw-"))
    procs = Processes()

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        with store_url(args.store, workdir, args.pg) as url:
            return run(args, conns, workdir, url, procs)
    finally:
        procs.stop_all()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, conns: list[int], workdir: Path, url: str, procs: Processes) -> int:
    sim_port, gw_port = free_port(), free_port()
    (workdir / "bundle").mkdir()
    (workdir / "bundle" / "bench.yaml").write_text(BUNDLE, encoding="utf-8")
    config = workdir / "costplane.yaml"
    config.write_text(CONFIG.format(host=HOST, port=gw_port, store=url, sim_port=sim_port), encoding="utf-8")

    sim_log, gw_log = workdir / "simulator.log", workdir / "gateway.log"
    sim = procs.start(python_cmd("simulate-upstream", "--host", HOST, "--port", str(sim_port),
                                 "--latency-ms", "0", "--log-level", "warning"), sim_log)
    sim_url = f"http://{HOST}:{sim_port}"
    wait_http(sim_url + "/v1/models", sim, sim_log)

    created = subprocess.run(python_cmd("keys", "create", "--name", "bench", "--team", "bench",
                                        "--config", str(config)),
                             capture_output=True, text=True, timeout=60, check=False)
    if created.returncode != 0:
        raise RuntimeError(f"keys create failed:\n{created.stdout}\n{created.stderr}")
    key = created.stdout.strip().splitlines()[-1].strip()

    gw = procs.start(python_cmd("serve", "--config", str(config), "--log-level", "warning"), gw_log)
    gw_url = f"http://{HOST}:{gw_port}"
    wait_http(gw_url + "/healthz", gw, gw_log)
    events_before, open_before = store_counts(url)

    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"store {args.store}: {url.split('@')[-1]}; simulator {sim_url} (pid {sim.pid}); "
          f"gateway {gw_url} (pid {gw.pid}); wrk {args.duration}s per run after {WARMUP_S}s warm-up")
    results: list[WrkResult] = []
    gateway_ok = 0
    in_flight = 0  # sum of connections over gateway runs: the most requests wrk can abandon
    for c in conns:
        for target, base in (("direct", sim_url), ("gateway", gw_url)):
            warm = run_wrk(base, key, c, WARMUP_S, target, args.rate)
            measured = run_wrk(base, key, c, args.duration, target, args.rate)
            if target == "gateway":
                gateway_ok += warm.ok + measured.ok
                in_flight += 2 * c
            results.append(measured)
            print(fmt_row(measured), flush=True)

    profile: tuple[WrkResult, Path] | None = None
    if args.profile is not None:
        profile = run_profile(gw.pid, gw_url, key, max(conns), args.duration, args.profile, args.wall)
        gateway_ok += profile[0].ok
        in_flight += max(conns)

    time.sleep(1.0)  # let requests wrk abandoned at its deadline finish in the gateway
    events_after, open_after = store_counts(url)
    if gw.poll() is not None:
        print(f"!! the gateway exited with {gw.returncode}; see {gw_log}")

    print()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"## gateway benchmark — store {args.store}, {args.duration}s per run, {os.cpu_count()} CPUs, "
          f"load average at the end {load} (1/5/15 min; anything else running skews the figures)")
    print()
    print("| target   | conns |     req/s | p50 ms  | p90 ms  | p99 ms  | max ms  | requests |")
    print("|----------|------:|----------:|--------:|--------:|--------:|--------:|---------:|")
    for r in results:
        print(fmt_row(r))
    print()
    print("| conns | added p50 ms | added p99 ms | gateway req/s | direct req/s |")
    print("|------:|-------------:|-------------:|--------------:|-------------:|")
    for c in conns:
        direct = next(r for r in results if r.connections == c and r.target == "direct")
        gateway = next(r for r in results if r.connections == c and r.target == "gateway")
        added_p50, added_p99 = gateway.p50_ms - direct.p50_ms, gateway.p99_ms - direct.p99_ms
        print(f"| {c:>5} | {added_p50:>12.2f} | {added_p99:>12.2f} | {gateway.rps:>13,.0f} | "
              f"{direct.rps:>12,.0f} |")
    print()
    metered = events_after - events_before
    verdict = "OK" if gateway_ok <= metered <= gateway_ok + in_flight and open_after == 0 else "MISMATCH"
    print(f"metering check: {verdict} — wrk counted {gateway_ok:,} gateway 200s (warm-ups included); the "
          f"store holds {metered:,} new cost events (+{metered - gateway_ok}; allowed ≤ +{in_flight}: each "
          f"wrk run abandons up to its connection count of requests at its deadline, which the gateway "
          f"still serves and meters); open reservations {open_before} before, {open_after} after")
    log_lines = gw_log.read_text(errors="replace").splitlines()
    errors = [ln for ln in log_lines if "ERROR" in ln or "Traceback" in ln]
    if errors:
        print(f"gateway log has {len(errors)} error lines, first: {errors[0]}")

    if profile is not None:
        result, collapsed = profile
        total, ranked = profile_breakdown(collapsed, main_thread_only=args.wall)
        print()
        kind = "wall-clock of the event-loop thread" if args.wall else "CPU (all threads)"
        print(f"## gateway {kind} — py-spy, {result.connections} connections, {total:,} samples "
              f"at 250 Hz over {args.duration}s ({result.rps:,.0f} req/s under the profiler)")
        print()
        print(f"| component | share of {'event-loop thread time' if args.wall else 'gateway CPU samples'} |")
        print("|---|---:|")
        for category, count in ranked:
            print(f"| {category} | {100 * count / total:5.1f} % |")
        print(f"\nraw stacks: {collapsed}")
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
