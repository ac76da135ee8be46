"""Gateway benchmark: CPU per request, added latency and throughput of the governed gateway, each
next to a bare Python pass-through measured in the same run, with wrk.

    .venv/bin/python benchmarks/bench_gateway.py                      # SQLite, 10 s, 1 and 50 connections
    .venv/bin/python benchmarks/bench_gateway.py --store postgres     # PostgreSQL (throw-away schema)
    .venv/bin/python benchmarks/bench_gateway.py --duration 5 --connections 1,10,50
    .venv/bin/python benchmarks/bench_gateway.py --variants --granian-python /tmp/gvenv/bin/python
    .venv/bin/python benchmarks/bench_gateway.py --leases             # lease-based budgets in the gateway
    .venv/bin/python benchmarks/bench_gateway.py --bundle hot-team    # one hot team budget, leases on
    .venv/bin/python benchmarks/bench_gateway.py --profile /tmp/gw-profile   # + py-spy breakdown
    .venv/bin/python benchmarks/bench_gateway.py --bundle hot-team --ledger-events 1000000   # a big ledger
    .venv/bin/python benchmarks/bench_gateway.py --bundle hot-team --store postgres --workers 3   # 3 processes

Four processes, all bound to 127.0.0.1: the upstream simulator (`costplane simulate-upstream`,
zero latency), the bare pass-through (`benchmarks/passthrough.py`: Starlette + aiohttp, uvicorn,
forwarding bytes to the same simulator: the Python floor), the gateway (`python -m costplane serve`,
i.e. uvicorn.run with loop/http "auto", which picks uvloop and httptools when installed) and wrk.
wrk runs benchmarks/gateway_load.lua: a non-streamed gpt-4o-mini chat completion (~20-token prompt,
max_tokens 16) with a bench key. For every connection count it measures the simulator directly,
the pass-through and the gateway, after a short warm-up of each; "added" = target minus direct.

CPU per request is the target process's user + system CPU (its whole process tree, from
/proc/<pid>/stat) over a measured run, divided by the requests wrk completed in it: it survives a
busy machine better than requests per second. Every gateway figure is also given as a ratio to the
pass-through's. After the runs at the largest connection count (saturation), the pass-through and
the gateway are each run again at half their saturation rate (paced connections) for p99. A paced
connection waits an exponentially distributed time between requests (--pacing exponential, the
default), so the connections' requests arrive like independent arrivals; --pacing fixed waits the
same time every time, which keeps the connections in lockstep (they start together) and measures
the queue of a burst of all of them at once.

Governance is fully on. --bundle every-limit (the default): 4 policies (deny, route, mutate, allow —
each `when` is evaluated on every request, the mutate matches), a hard team budget (1,000,000 USD:
never denies), a per-run budget (`per: [run]`), a per-key concurrency limit (256) and the loop
detector; leases never engage there (the concurrency limit keeps every request on the store's direct
path). --bundle hot-team: the same policies, the hard team budget and the loop detector, no per-run
budget and no concurrency limit, with lease-based budgets on (the team's one hot window is admitted
from leases in memory; settlements are journalled and applied in batches). After the run it
checks that every 200 wrk counted was metered (cost events in the store) and that no reservation
is left open.

--variants also measures pass-through variants at the largest connection count, one piece of the
hot path swapped at a time: granian instead of uvicorn (needs --granian-python: an interpreter
with granian installed, it is not a project dependency), httpx instead of aiohttp, a direct ASGI
dispatch instead of Starlette's router, decoding and re-encoding the JSON (stdlib json, orjson),
copying the upstream's headers. --profile DIR additionally runs one more loaded gateway period at
the largest connection count under `py-spy record --gil` (pip install py-spy) and prints a breakdown
of gateway CPU by component: only samples of the thread holding the GIL count, since a thread that
is runnable but waiting for a core or for the GIL (a store thread under load) is not spending CPU.
PostgreSQL comes from --pg or env COSTPLANE_TEST_PG (default
postgresql://postgres@127.0.0.1:5432/test); the benchmark creates and drops schema bench_<random>.
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

_POLICIES = """\
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
"""

_TEAM_BUDGET = """\
kind: Budget
name: team-bench-monthly
scope: ctx.team == "bench"
amount: 1000000 USD
window: {calendar: month, timezone: Europe/Berlin}
enforcement: hard
"""

_RUN_AND_CONCURRENCY = """\
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

#: --bundle: "every-limit" = 4 policies, the hard team budget, a per-run budget (every wrk run id is a
#: cold window) and a per-key concurrency limit (never leased: it stays on the store's direct path);
#: "hot-team" = 4 policies and the hard team budget only (plus the loop detector), with lease-based
#: budgets on: one hot window every request charges, which is what leases are for.
BUNDLES: dict[str, str] = {
    "every-limit": f"{_POLICIES}---\n{_TEAM_BUDGET}---\n{_RUN_AND_CONCURRENCY}",
    "hot-team": f"{_POLICIES}---\n{_TEAM_BUDGET}",
}

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
    cpu_s: float | None = None  # CPU seconds of the target's process tree during the run
    rate: int = 0  # offered load (paced), 0 = closed loop
    store_tx: int | None = None  # PostgreSQL transactions the gateway ran during the run (its /metrics)

    @property
    def store_tx_per_request(self) -> float | None:
        return None if self.store_tx is None or not self.requests else self.store_tx / self.requests

    @property
    def cpu_ms_per_request(self) -> float | None:
        return None if self.cpu_s is None or not self.requests else 1000 * self.cpu_s / self.requests

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)


@dataclass
class Processes:
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                    env=None if env is None else {**os.environ, **env})
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


def _proc_stats() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, user + system clock ticks) of every process now."""
    out: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ..., utime, stime
        out[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return out


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid` and its descendants (granian's workers, say) so far."""
    stats = _proc_stats()
    total, todo, seen = 0, [pid], set[int]()
    while todo:
        current = todo.pop()
        if current in seen or current not in stats:
            continue
        seen.add(current)
        total += stats[current][1]
        todo += [child for child, (parent, _) in stats.items() if parent == current]
    return total / os.sysconf("SC_CLK_TCK")


def store_transactions(url: str) -> int | None:
    """`costplane_store_transactions_total` of a gateway's /metrics (None: not a PostgreSQL store)."""
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=30) as response:
            text = response.read().decode()
    except OSError:
        return None
    line = next((ln for ln in text.splitlines() if ln.startswith("costplane_store_transactions_total ")), None)
    return None if line is None else int(float(line.split()[1]))


_STATS_SETTLE_S = 11.0  # PostgreSQL reports an idle backend's transaction counts within 10 s


def database_transactions(pg: str) -> int:
    """Committed and rolled-back transactions of the whole database (`pg_stat_database`), after waiting
    for every backend's counts to be reported: the store transactions of several gateway processes,
    as long as nothing else uses the database meanwhile."""
    import psycopg

    time.sleep(_STATS_SETTLE_S)
    with psycopg.connect(pg, autocommit=True) as conn:
        row = conn.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database"
                           " WHERE datname = current_database()").fetchone()
    return int(row[0]) if row else 0


def measure(url: str, key: str, connections: int, duration: int, target: str, pid: int,
            rate: int = 0, scrape_transactions: bool = True) -> WrkResult:
    """A measured wrk run with the CPU the target process tree used during it (and, for the gateway on
    PostgreSQL, the store transactions it ran, from /metrics: a scrape's own reads — measured by two
    scrapes back to back before the run — are subtracted)."""
    tx_before = store_transactions(url) if target == "gateway" and scrape_transactions else None
    scrape = 0
    if tx_before is not None:
        again = store_transactions(url)
        scrape, tx_before = (again - tx_before, again) if again is not None else (0, tx_before)
    before = tree_cpu_s(pid)
    result = run_wrk(url, key, connections, duration, target, rate)
    result.cpu_s = tree_cpu_s(pid) - before
    result.rate = rate
    if tx_before is not None:
        tx_after = store_transactions(url)
        result.store_tx = None if tx_after is None else max(0, tx_after - tx_before - scrape)
    return result


def run_wrk(url: str, key: str, connections: int, duration: int, target: str, rate: int = 0) -> WrkResult:
    """One wrk run. rate > 0 paces the connections to offer about `rate` requests/s in all."""
    threads = 1 if connections == 1 else 2
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s",
            "-s", str(LUA), url]
    env = {**os.environ, "COSTPLANE_KEY": key, "COSTPLANE_SALT": secrets.token_hex(4) + "-"}
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


def preload(url: str, events: int) -> None:
    """Write `events` calls' rows (cost event and decision; random ids, as a ledger written before
    time-ordered ids has) through the lease writer's batch path, so the runs measure a ledger of
    that size rather than an empty one."""
    from bench_event_writes import calls, random_id

    from costplane.ledger.base import SqlStore
    from costplane.ledger.lease_store import LeasedRecord
    from costplane.ledger.open import open_store

    store = open_store(url)
    if not isinstance(store, SqlStore):
        raise RuntimeError("--ledger-events needs a SQL store")
    began = time.monotonic()
    try:
        for start in range(0, events, 20_000):
            store.apply_leased([LeasedRecord(d, (), (), e) for e, d in calls(min(20_000, events - start), random_id)])
    finally:
        store.close()
    print(f"preloaded {events:,} calls' rows in {time.monotonic() - began:.0f} s")


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
                              "--full-filenames", *(["--idle", "--threads"] if wall else ["--gil"]),
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


#: pass-through variants (--variants): one piece of the hot path swapped at a time
VARIANTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("server: granian instead of uvicorn", ("--server", "granian")),
    ("client: httpx instead of aiohttp", ("--client", "httpx")),
    ("routing: direct ASGI dispatch instead of Starlette", ("--router", "asgi")),
    ("JSON: decode + re-encode with stdlib json", ("--json", "stdlib")),
    ("JSON: decode + re-encode with orjson", ("--json", "orjson")),
    ("headers: copy the upstream's (less hop-by-hop)", ("--headers", "copy")),
    ("all of: granian, direct ASGI, orjson", ("--server", "granian", "--router", "asgi", "--json", "orjson")),
)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def fmt_row(r: WrkResult) -> str:
    non200 = {s: n for s, n in r.statuses.items() if s != 200}
    errs = {k: v for k, v in r.errors.items() if v and k != "status"}
    extra = f"  non-200 {non200}" if non200 else ""
    extra += f"  socket errors {errs}" if errs else ""
    offered = f"{r.rate:,}/s" if r.rate else "max"
    return (f"| {r.target:<11} | {r.connections:>5} | {offered:>8} | {r.rps:>9,.0f} | {r.p50_ms:>7.2f} | "
            f"{r.p90_ms:>7.2f} | {r.p99_ms:>7.2f} | {r.max_ms:>7.2f} | {_ms(r.cpu_ms_per_request):>7} | "
            f"{r.requests:>8,} |{extra}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured wrk run (default 10)")
    parser.add_argument("--connections", default="1,50",
                        help="comma-separated connection counts (default 1,50); the largest is saturation")
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
    parser.add_argument("--db-transactions", action="store_true",
                        help="on PostgreSQL, count the gateway's store transactions from pg_stat_database (as "
                             "--workers N does) rather than its /metrics, to compare one process with several")
    parser.add_argument("--workers", type=int, default=1,
                        help="gateway worker processes (`serve --workers N`; CPU is the whole process tree's; on "
                             "PostgreSQL the store transactions of the run at the most connections come from "
                             "pg_stat_database, read 11 s after the run: keep the database otherwise idle)")
    parser.add_argument("--rate", type=int, default=0,
                        help="offered load in requests/s for every run (paced connections, below "
                             "saturation); default 0 = as fast as possible")
    parser.add_argument("--leases", action="store_true",
                        help="run the gateway with lease-based budgets (env COSTPLANE_LEASES=on; settlements "
                             "reach the store in batches, so give the metering check its time)")
    parser.add_argument("--bundle", choices=tuple(BUNDLES), default="every-limit",
                        help="governance profile: every-limit (default: team budget, per-run budget, per-key "
                             "concurrency limit; leases never engage) or hot-team (team budget, policies, loop "
                             "detector; implies --leases, so the team's window is admitted from leases)")
    parser.add_argument("--ledger-events", type=int, default=0,
                        help="calls' rows written into the ledger before the runs (default 0: an empty ledger); "
                             "1,000,000 take about 8 min on SQLite here")
    parser.add_argument("--pacing", choices=("exponential", "fixed"), default="exponential",
                        help="a paced connection's wait between requests: exponential with the mean that gives "
                             "the rate (default: arrivals interleave) or always the mean (connections in lockstep)")
    parser.add_argument("--no-half-rate", action="store_true",
                        help="skip the runs at half the saturation rate (p99 below saturation)")
    parser.add_argument("--variants", action="store_true",
                        help="also measure the pass-through variants (server, client, routing, JSON, headers)")
    parser.add_argument("--granian-python", default=None,
                        help="an interpreter with granian installed, for the granian variant")
    args = parser.parse_args(argv)
    os.environ["COSTPLANE_PACING"] = args.pacing  # read by gateway_load.lua in every wrk run
    if args.bundle == "hot-team":
        args.leases = True
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


def start_passthrough(procs: Processes, workdir: Path, sim_url: str, name: str, extra: Sequence[str] = (),
                      python: str | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = workdir / f"passthrough-{name}.log"
    proc = procs.start([python or sys.executable, str(HERE / "passthrough.py"), "--port", str(port),
                        "--upstream", sim_url, *extra], log)
    url = f"http://{HOST}:{port}"
    wait_http(url + "/", proc, log)
    return proc, url


def run(args: argparse.Namespace, conns: list[int], workdir: Path, url: str, procs: Processes) -> int:
    sim_port, gw_port = free_port(), free_port()
    (workdir / "bundle").mkdir()
    (workdir / "bundle" / "bench.yaml").write_text(BUNDLES[args.bundle], encoding="utf-8")
    config = workdir / "costplane.yaml"
    config.write_text(CONFIG.format(host=HOST, port=gw_port, store=url, sim_port=sim_port), encoding="utf-8")

    sim_log, gw_log = workdir / "simulator.log", workdir / "gateway.log"
    sim = procs.start(python_cmd("simulate-upstream", "--host", HOST, "--port", str(sim_port),
                                 "--latency-ms", "0", "--log-level", "warning"), sim_log)
    sim_url = f"http://{HOST}:{sim_port}"
    wait_http(sim_url + "/v1/models", sim, sim_log)
    passthrough, pt_url = start_passthrough(procs, workdir, sim_url, "bare")

    created = subprocess.run(python_cmd("keys", "create", "--name", "bench", "--team", "bench",
                                        "--config", str(config)),
                             capture_output=True, text=True, timeout=60, check=False)
    if created.returncode != 0:
        raise RuntimeError(f"keys create failed:\n{created.stdout}\n{created.stderr}")
    key = created.stdout.strip().splitlines()[-1].strip()
    if args.ledger_events:
        preload(url, args.ledger_events)

    workers = ("--workers", str(args.workers)) if args.workers > 1 else ()
    gw = procs.start(python_cmd("serve", "--config", str(config), "--log-level", "warning", *workers), gw_log,
                     {"COSTPLANE_LEASES": "on"} if args.leases else None)
    gw_url = f"http://{HOST}:{gw_port}"
    wait_http(gw_url + "/healthz", gw, gw_log)
    events_before, open_before = store_counts(url)

    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"store {args.store}: {url.split('@')[-1]}; simulator {sim_url} (pid {sim.pid}); pass-through {pt_url} "
          f"(pid {passthrough.pid}); gateway {gw_url} (pid {gw.pid}); wrk {args.duration}s per run after "
          f"{WARMUP_S}s warm-up")
    targets = (("direct", sim_url, sim.pid), ("passthrough", pt_url, passthrough.pid), ("gateway", gw_url, gw.pid))
    results: list[WrkResult] = []
    gateway_ok = 0
    in_flight = 0  # sum of connections over gateway runs: the most requests wrk can abandon

    def counted(result: WrkResult, warm: WrkResult | None = None) -> None:
        nonlocal gateway_ok, in_flight
        if result.target == "gateway":
            gateway_ok += result.ok + (warm.ok if warm else 0)
            in_flight += result.connections * (2 if warm else 1)

    for c in conns:
        for target, base, pid in targets:
            warm = run_wrk(base, key, c, WARMUP_S, target, args.rate)
            several = (target == "gateway" and (args.workers > 1 or args.db_transactions) and args.store == "postgres"
                       and c == max(conns))
            before_tx = database_transactions(args.pg) if several else 0
            measured = measure(base, key, c, args.duration, target, pid, args.rate, args.workers == 1 and not several)
            if several:  # every worker's transactions, from the database's counters (less the first read's own)
                measured.store_tx = max(0, database_transactions(args.pg) - before_tx - 1)
            counted(measured, warm)
            results.append(measured)
            print(fmt_row(measured), flush=True)

    top = max(conns)
    half: dict[str, WrkResult] = {}
    if not args.no_half_rate and not args.rate:
        for target, base, pid in targets[1:]:
            saturated = next(r for r in results if r.target == target and r.connections == top)
            rate = max(1, int(saturated.rps / 2))
            half[target] = measure(base, key, top, args.duration, target, pid, rate, args.workers == 1)
            counted(half[target])
            print(fmt_row(half[target]), flush=True)

    variants: list[tuple[str, WrkResult]] = []
    if args.variants:
        for name, extra in VARIANTS:
            if "granian" in extra and not args.granian_python:
                print(f"skipped variant {name!r}: no --granian-python")
                continue
            proc, vurl = start_passthrough(procs, workdir, sim_url, f"v{len(variants)}", extra,
                                           args.granian_python if "granian" in extra else None)
            run_wrk(vurl, key, top, WARMUP_S, "variant")
            result = measure(vurl, key, top, args.duration, "variant", proc.pid)
            procs.stop(proc)
            variants.append((name, result))
            print(f"{name}: {fmt_row(result)}", flush=True)
        # the bare pass-through again, after the variants: how much the machine drifted meanwhile
        again = measure(pt_url, key, top, args.duration, "passthrough", passthrough.pid)
        variants.append(("bare pass-through again (drift check)", again))
        print(f"again: {fmt_row(again)}", flush=True)

    profile: tuple[WrkResult, Path] | None = None
    if args.profile is not None:
        profile = run_profile(gw.pid, gw_url, key, top, args.duration, args.profile, args.wall)
        gateway_ok += profile[0].ok
        in_flight += top

    time.sleep(3.0 if args.leases else 1.0)  # let abandoned requests finish (and leased batches land)
    events_after, open_after = store_counts(url)
    if gw.poll() is not None:
        print(f"!! the gateway exited with {gw.returncode}; see {gw_log}")

    print()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    leases = " with leases" if args.leases else ""
    leases += f", {args.workers} gateway worker processes" if args.workers > 1 else ""
    print(f"## gateway benchmark — store {args.store}, bundle {args.bundle}{leases}, {args.duration}s per run, "
          f"{os.cpu_count()} CPUs, "
          f"load average at the end {load} (1/5/15 min; anything else running skews the figures)")
    print()
    print("| target      | conns |  offered |     req/s | p50 ms  | p90 ms  | p99 ms  | max ms  | CPU ms/req | "
          "requests |")
    print("|-------------|------:|---------:|----------:|--------:|--------:|--------:|--------:|--------:|"
          "---------:|")
    for r in [*results, *half.values()]:
        print(fmt_row(r))
    print()
    print_summary(results, half, conns)
    if variants:
        print_variants(results, variants, top)
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
        kind = "wall-clock of the event-loop thread" if args.wall else "CPU (samples holding the GIL, all threads)"
        print(f"## gateway {kind} — py-spy, {result.connections} connections, {total:,} samples "
              f"at 250 Hz over {args.duration}s ({result.rps:,.0f} req/s under the profiler)")
        print()
        print(f"| component | share of {'event-loop thread time' if args.wall else 'gateway CPU samples'} |")
        print("|---|---:|")
        for category, count in ranked:
            print(f"| {category} | {100 * count / total:5.1f} % |")
        print(f"\nraw stacks: {collapsed}")
    return 0 if verdict == "OK" else 1


def _ratio(value: float | None, floor: float | None) -> str:
    return "—" if value is None or not floor else f"{value / floor:.2f}×"


def print_summary(results: list[WrkResult], half: dict[str, WrkResult], conns: list[int]) -> None:
    """The issue's four figures for the pass-through and the gateway, and the gateway's ratio to it."""
    top, low = max(conns), min(conns)

    def at(target: str, c: int) -> WrkResult:
        return next(r for r in results if r.target == target and r.connections == c)

    print("| figure | pass-through | gateway | gateway / pass-through |")
    print("|---|---:|---:|---:|")
    pt, gw = at("passthrough", top), at("gateway", top)
    print(f"| CPU ms per request @{top} | {_ms(pt.cpu_ms_per_request)} | {_ms(gw.cpu_ms_per_request)} | "
          f"{_ratio(gw.cpu_ms_per_request, pt.cpu_ms_per_request)} |")
    print(f"| req/s @{top} | {pt.rps:,.0f} | {gw.rps:,.0f} | {_ratio(gw.rps, pt.rps)} |")
    if gw.store_tx_per_request is not None:
        print(f"| store transactions per request @{top} (PostgreSQL) | — | {gw.store_tx_per_request:.3f} | |")
    direct = at("direct", low)
    added_pt, added_gw = at("passthrough", low).p50_ms - direct.p50_ms, at("gateway", low).p50_ms - direct.p50_ms
    print(f"| added p50 ms @{low} | {added_pt:.3f} | {added_gw:.3f} | {_ratio(added_gw, added_pt)} |")
    if half:
        hp, hg = half["passthrough"], half["gateway"]
        print(f"| p99 ms @ half saturation ({hp.rate:,} / {hg.rate:,} req/s offered) | {hp.p99_ms:.2f} | "
              f"{hg.p99_ms:.2f} | {_ratio(hg.p99_ms, hp.p99_ms)} |")
        print(f"| CPU ms per request @ half saturation | {_ms(hp.cpu_ms_per_request)} | "
              f"{_ms(hg.cpu_ms_per_request)} | {_ratio(hg.cpu_ms_per_request, hp.cpu_ms_per_request)} |")
    print()
    print("| conns | added p50 ms | added p99 ms | gateway req/s | direct req/s | gateway CPU ms/req |")
    print("|------:|-------------:|-------------:|--------------:|-------------:|-------------------:|")
    for c in conns:
        d, g = at("direct", c), at("gateway", c)
        print(f"| {c:>5} | {g.p50_ms - d.p50_ms:>12.2f} | {g.p99_ms - d.p99_ms:>12.2f} | {g.rps:>13,.0f} | "
              f"{d.rps:>12,.0f} | {_ms(g.cpu_ms_per_request):>18} |")


def print_variants(results: list[WrkResult], variants: list[tuple[str, WrkResult]], top: int) -> None:
    base = next(r for r in results if r.target == "passthrough" and r.connections == top)
    floor = base.cpu_ms_per_request
    print()
    print(f"| pass-through variant @{top} connections | CPU ms/req | vs bare | Δ CPU ms/req | req/s |")
    print("|---|---:|---:|---:|---:|")
    print(f"| bare: uvicorn, aiohttp, Starlette, bytes forwarded, content type only | {_ms(floor)} | 1.00× | — | "
          f"{base.rps:,.0f} |")
    for name, r in variants:
        cpu = r.cpu_ms_per_request
        delta = "—" if cpu is None or floor is None else f"{cpu - floor:+.3f}"
        print(f"| {name} | {_ms(cpu)} | {_ratio(cpu, floor)} | {delta} | {r.rps:,.0f} |")


if __name__ == "__main__":
    sys.exit(main())
