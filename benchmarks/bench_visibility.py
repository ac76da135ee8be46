"""Visibility API at scale: overview and spend breakdowns over N cost events.

    .venv/bin/python benchmarks/bench_visibility.py --events 200000            # develop
    .venv/bin/python benchmarks/bench_visibility.py --only sqlite --reuse      # 10 M, keep /tmp data
    .venv/bin/python benchmarks/bench_visibility.py --only postgres --reuse
    .venv/bin/python benchmarks/bench_visibility.py --write-cost --pairs 5000  # what the triggers cost

Loads N events (default 10,000,000) spread over 60 days up to now — 12 teams, 60 agents, 15
models, 8 pipelines, 2 tiers, 36 users, one key per agent, a run every ~25 calls of an agent,
weekday and hour-of-day seasonality — plus ~0.2 % deny decisions, into a SQLite file under /tmp
and a PostgreSQL schema `bench_visibility_<N>` ($COSTPLANE_TEST_PG). The bulk load drops the
rollup triggers, inserts (SQLite: executemany, 100k rows a transaction; PostgreSQL: COPY),
runs `Store.rebuild_rollups()` and re-creates the triggers. `--reuse` keeps and reuses them.

Then it times >= `--calls` calls of each request through the real ASGI app (create_server,
httpx in-process ASGITransport: routing, auth, scoping and JSON included; no background jobs)
as a finance user and as a developer of one team, and prints p50/p95/max. Target: p95 <= 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

from costplane.api.credentials import issue_token, new_user
from costplane.app import Application
from costplane.config import parse_config
from costplane.ledger import open_store
from costplane.ledger.codec import EVENT_COLUMNS, column_list, to_us
from costplane.ledger.rollups import DROP_TRIGGERS, create_triggers
from costplane.server import create_server

sys.path.insert(0, str(Path(__file__).parent))

PG = os.environ.get("COSTPLANE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
HOUR_US = 3_600_000_000
DAYS = 60
TOP_UP_HOURS = 6
# (model, provider, USD per MTok input, output)
MODELS = [("gpt-4o", "openai", 2.5, 10), ("gpt-4o-mini", "openai", 0.15, 0.6), ("o3-mini", "openai", 1.1, 4.4),
          ("gpt-4.1", "openai", 2, 8), ("gpt-4.1-mini", "openai", 0.4, 1.6), ("gpt-4.1-nano", "openai", 0.1, 0.4),
          ("text-embedding-3-small", "openai", 0.02, 0), ("claude-sonnet-4", "anthropic", 3, 15),
          ("claude-haiku-3.5", "anthropic", 0.8, 4), ("claude-opus-4", "anthropic", 15, 75),
          ("gemini-2.0-flash", "google", 0.1, 0.4), ("gemini-2.5-pro", "google", 1.25, 10),
          ("llama-3.3-70b", "groq", 0.59, 0.79), ("mistral-large", "mistral", 2, 6), ("command-r", "cohere", 0.15, 0.6)]
TEAMS = [f"team-{i:02d}" for i in range(12)]
PIPELINES = ["support-bot", "claims", "underwriting", "search-rag", "etl-enrich", "codegen", "summaries", "triage"]


def _agents(rng: random.Random) -> list[dict[str, Any]]:
    agents = []
    for i in range(60):
        team = TEAMS[i % 12]
        agents.append({
            "agent": f"agent-{i:02d}", "team": team, "project": f"{team}-p{i % 2}", "owner": f"owner-{i % 12}",
            "tier": "experiment" if i % 5 == 4 else "prod", "pipeline": PIPELINES[i % 8], "key": f"key-{i:02d}",
            "models": rng.sample(range(len(MODELS)), 3), "users": [f"user-{(i % 12) * 3 + k}" for k in range(3)],
            "weight": 1.0 / (1 + i % 20) ** 0.7,
        })
    return agents


def generate(n: int, end_us: int, seed: int = 7, start_us: int | None = None, prefix: str = "ev") -> Any:
    """Yield lists of event rows (EVENT_COLUMNS order), oldest first, one list per hour, over the
    DAYS before `end_us` (or from `start_us`)."""
    rng = random.Random(seed)
    agents = _agents(random.Random(7))  # the same agents whatever the seed
    weights = [a["weight"] for a in agents]
    start = end_us // HOUR_US * HOUR_US - DAYS * 24 * HOUR_US if start_us is None else start_us
    hours = [h for h in range(start // HOUR_US * HOUR_US, end_us, HOUR_US)]
    shape = []
    for h in hours:
        at = datetime.fromtimestamp(h / 1e6, UTC)
        weekday = 1.0 if at.weekday() < 5 else 0.35
        diurnal = 0.3 + math.exp(-((at.hour - 14) ** 2) / 18)
        trend = 0.8 + 0.4 * min(1.0, (h - start) / (DAYS * 24 * HOUR_US))
        shape.append(weekday * diurnal * trend)
    total = sum(shape)
    counts = [int(n * s / total) for s in shape]
    counts[-1] += n - sum(counts)
    run_calls = [0] * len(agents)
    seq = 0
    empty_tags = "{}"
    for h, count in zip(hours, counts, strict=True):
        low = max(h, start)
        width = min(h + HOUR_US, end_us) - low
        offsets = sorted(low - h + rng.randrange(max(1, width)) for _ in range(count))
        picks = rng.choices(range(len(agents)), weights=weights, k=count)
        rows = []
        for off, ai in zip(offsets, picks, strict=True):
            a = agents[ai]
            model, provider, rin, rout = MODELS[rng.choice(a["models"])]
            embedding = model.startswith("text-embedding")
            tin = rng.randrange(200, 8000)
            tout = 0 if embedding else rng.randrange(20, 1200)
            cost = tin * round(rin * 1000) + tout * round(rout * 1000)  # USD per MTok = 1000 nano-USD per token
            run_calls[ai] += 1
            status = "ok" if rng.random() < 0.97 else rng.choice(["error", "cut"])
            seq += 1
            rows.append((
                f"{prefix}{seq:09d}", h + off, "acme", a["team"], a["project"], rng.choice(a["users"]), a["owner"],
                a["tier"], a["pipeline"], f"run-{a['agent']}-{run_calls[ai] // 25}",
                f"exp-{run_calls[ai] // 500}" if a["tier"] == "experiment" else None, a["agent"],
                f"step-{run_calls[ai] % 7}", None, None, None, a["key"], empty_tags, provider, model, None,
                "embedding" if embedding else "llm", "embeddings" if embedding else "chat.completions", status,
                tin, tout, 0, 0, 0, f'{{"input": "{rin}", "output": "{rout}"}}', cost, 0,
                None, None, rng.randrange(200, 4000), False, None,
            ))
        yield rows


def decisions(n_events: int, end_us: int, seed: int = 11) -> list[tuple[Any, ...]]:
    """~0.2 % of calls denied: by budget, by policy, by the loop guard."""
    rng = random.Random(seed)
    out = []
    start = end_us - DAYS * 24 * HOUR_US
    for i in range(max(10, n_events // 500)):
        team = rng.choice(TEAMS)
        kind = rng.random()
        if kind < 0.5:
            result = {"code": "budget_exceeded", "budget": f"{team}-monthly"}
            reason = f"budget '{team}-monthly' exceeded"
        elif kind < 0.9:
            name = rng.choice(["no-opus-in-experiments", "max-context-32k"])
            result, reason = {"code": "policy_denied"}, f"denied by policy '{name}': not allowed"
        else:
            result, reason = {"code": "loop_detected"}, "loop detected"
        ctx = {"team": team, "project": f"{team}-p0"}
        out.append((f"dec{i:08d}", rng.randrange(start, end_us), "llm.request", "deny", "sha256:bench", reason, 402,
                    None, orjson.dumps(ctx).decode(), team, None, None, "{}", orjson.dumps(result).decode(), "[]",
                    "[]"))
    return out


_DEC_COLS = ("id", "ts", "hook", "effect", "bundle_revision", "reason", "status_code", "key_id", "context", "team",
             "agent", "run", "input", "result", "policies", "budgets")


def _marker(store: Any) -> tuple[int, int] | None:
    try:
        rows = store._read(lambda tx: tx.all("SELECT events, end_us FROM bench_meta"))
    except Exception:
        return None
    return (int(rows[0][0]), int(rows[0][1])) if rows else None


def load(kind: str, url: str, n: int, sqlite_path: Path | None) -> int:
    """Bulk-load n events; returns the end of the data (µs)."""
    end_us = to_us(datetime.now(UTC))
    store = open_store(url)
    store.migrate()
    cols = column_list(EVENT_COLUMNS)
    t0 = time.perf_counter()
    loaded = 0
    if kind == "sqlite":
        assert sqlite_path is not None
        store.close()
        conn = sqlite3.connect(sqlite_path, isolation_level=None)
        conn.execute("PRAGMA synchronous = OFF")
        for statement in DROP_TRIGGERS["sqlite"]:
            conn.execute(statement)
        marks = ", ".join("?" for _ in EVENT_COLUMNS)
        insert = f"INSERT INTO cost_events ({cols}) VALUES ({marks})"
        batch: list[tuple[Any, ...]] = []
        for rows in generate(n, end_us):
            batch += rows
            if len(batch) >= 100_000:
                conn.execute("BEGIN")
                conn.executemany(insert, batch)
                conn.execute("COMMIT")
                loaded += len(batch)
                batch = []
                _progress(loaded, n, t0)
        conn.execute("BEGIN")
        conn.executemany(insert, batch)
        conn.executemany(f"INSERT INTO decisions ({column_list(_DEC_COLS)}) VALUES ({', '.join('?' * 16)})",
                         decisions(n, end_us))
        conn.execute("COMMIT")
        conn.close()
    else:
        schema = url.split("schema=")[1]
        with psycopg.connect(PG, options=f"-c search_path={schema}", autocommit=True) as pg:
            for statement in DROP_TRIGGERS["postgres"]:
                pg.execute(statement)
            with pg.cursor() as cur, cur.copy(f"COPY cost_events ({cols}) FROM STDIN") as copy:
                for rows in generate(n, end_us):
                    for row in rows:
                        copy.write_row(row)
                    loaded += len(rows)
                    if loaded % 500_000 < len(rows):
                        _progress(loaded, n, t0)
            with pg.cursor() as cur, cur.copy(f"COPY decisions ({column_list(_DEC_COLS)}) FROM STDIN") as copy:
                for row in decisions(n, end_us):
                    copy.write_row(row)
        store.close()
    print(f"  loaded {n:,} events in {time.perf_counter() - t0:.0f} s (rollup triggers dropped during the load)")
    store = open_store(url)
    t1 = time.perf_counter()
    counts = store.rebuild_rollups()
    print(f"  rebuild_rollups(): {time.perf_counter() - t1:.0f} s -> {dict(counts)}")
    ddl = [*create_triggers(kind), "CREATE TABLE bench_meta (events BIGINT, end_us BIGINT)",
           f"INSERT INTO bench_meta VALUES ({n}, {end_us})"]
    store._write(lambda tx: [tx.exec(s) for s in ddl])  # type: ignore[attr-defined]
    store._write(lambda tx: tx.exec("ANALYZE"))  # type: ignore[attr-defined]
    store.close()
    return end_us


def top_up(url: str, n: int, end_us: int) -> None:
    """Live traffic up to now, written with the triggers on (as the gateway would): the last
    `TOP_UP_HOURS` before now get their share of events, so the current hour is not empty
    and a reused data set's recent windows are populated."""
    now = to_us(datetime.now(UTC))
    start = max(end_us, now - TOP_UP_HOURS * HOUR_US)
    count = int(n * (now - start) / (DAYS * 24 * HOUR_US))
    if count <= 0:
        return
    store: Any = open_store(url)
    cols = column_list(EVENT_COLUMNS)
    insert = f"INSERT INTO cost_events ({cols}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
    t0 = time.perf_counter()
    for rows in generate(count, now, seed=now % 1000, start_us=start, prefix=f"live{now}-"):
        if rows:
            store._write(lambda tx, r=rows: tx.many(insert, r))
    store._write(lambda tx: tx.exec("UPDATE bench_meta SET end_us = ?", (now,)))
    store.close()
    print(f"  live top-up: {count:,} events for the last {(now - start) / HOUR_US:.1f} h written with the triggers"
          f" on ({count / (time.perf_counter() - t0):,.0f} events/s in hourly batches)")


def _progress(done: int, n: int, t0: float) -> None:
    took = time.perf_counter() - t0
    print(f"    {done:>11,} / {n:,}  {done / took:,.0f} rows/s", flush=True)


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def measure(app: Application, calls: int, team: str, agent: str) -> list[tuple[str, str, list[float]]]:
    server = create_server(app)
    tokens = {}
    for name, role, teams in (("bench-fin", "finance", ()), ("bench-dev", "developer", (team,))):
        user = app.store.user_by_name(name) or new_user(app.store, name, role, teams)
        tokens[role] = issue_token(app.store, user)[0]
    now = datetime.now(UTC)
    since30 = (now - timedelta(days=30)).isoformat()
    since2 = (now - timedelta(days=2)).isoformat()
    cases = [
        ("overview", "/api/v1/overview", {}),
        ("overview Europe/Berlin", "/api/v1/overview", {"timezone": "Europe/Berlin"}),
        ("spend team/day 30d", "/api/v1/spend", {"group_by": "team", "bucket": "day", "since": since30}),
        (f"spend agent team={team}", "/api/v1/spend", {"group_by": "agent", "team": team}),
        ("spend model team,agent hour 2d", "/api/v1/spend",
         {"group_by": "model", "team": team, "agent": agent, "bucket": "hour", "since": since2}),
    ]
    out = []
    transport = httpx.ASGITransport(app=server)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for role in ("finance", "developer"):
            headers = {"authorization": f"Bearer {tokens[role]}"}
            for label, path, params in cases:
                samples = []
                for i in range(calls + 3):
                    t0 = time.perf_counter()
                    response = await client.get(path, params=params, headers=headers)
                    took = (time.perf_counter() - t0) * 1000
                    if response.status_code != 200:
                        raise SystemExit(f"{label} as {role}: HTTP {response.status_code} {response.text[:300]}")
                    if i >= 3:  # 3 warm-up calls
                        samples.append(took)
                out.append((role, label, samples))
    return out


def run(kind: str, url: str, args: argparse.Namespace, sqlite_path: Path | None) -> None:
    print(f"{kind}: {url}")
    store = open_store(url)
    store.migrate()
    marker = _marker(store)
    store.close()
    if marker is None or marker[0] != args.events or not args.reuse:
        if marker is not None:
            raise SystemExit(f"{url} already holds bench data ({marker[0]:,} events): pass --reuse or remove it")
        top_up(url, args.events, load(kind, url, args.events, sqlite_path))
    else:
        age = (to_us(datetime.now(UTC)) - marker[1]) / 3.6e9
        print(f"  reusing {marker[0]:,} events (data ends {age:.1f} h ago)")
        top_up(url, args.events, marker[1])
    with tempfile.TemporaryDirectory() as tmp:
        app = Application(parse_config({"store": url}, base=Path(tmp)))
        try:
            raw_check(app)
            results = asyncio.run(measure(app, args.calls, "team-03", "agent-03"))
        finally:
            app.close()
    print(f"  {'as':<10} {'request':<34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  (n={args.calls})")
    for role, label, samples in results:
        p95 = _pct(samples, 0.95)
        verdict = "ok" if p95 <= 200 else "MISSED (target p95 <= 200 ms)"
        print(f"  {role:<10} {label:<34} {statistics.median(samples):8.1f} {p95:8.1f} {max(samples):8.1f}  {verdict}")


def raw_check(app: Application) -> None:
    """One routed and one raw-scan call of the same breakdown: equal results, and the speed-up."""
    store: Any = app.store
    kwargs = {"group_by": ["team"], "bucket": "day", "since": datetime.now(UTC) - timedelta(days=30)}
    t0 = time.perf_counter()
    routed = store.spend(**kwargs)
    t1 = time.perf_counter()
    store.use_rollups = False
    raw = store.spend(**kwargs)
    t2 = time.perf_counter()
    store.use_rollups = True
    same = "equal" if routed == raw else "DIFFERENT"
    print(f"  store.spend(team, day, 30 d): rollups {1000 * (t1 - t0):.0f} ms, raw scan {1000 * (t2 - t1):.0f} ms,"
          f" results {same}")
    if routed != raw:
        raise SystemExit("routed and raw spend differ")


def write_cost(args: argparse.Namespace) -> None:
    """SQLite reserve+settle pairs/s (bench_store.pairs) with and without the rollup triggers, alternating."""
    from bench_store import pairs

    rates: dict[str, list[float]] = {"with triggers": [], "without triggers": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.db"
        store: Any = open_store(f"sqlite:///{path}")
        store.migrate()
        pairs(store, 500)
        for _ in range(args.rounds):
            for label in rates:
                ddl = create_triggers("sqlite") if label == "with triggers" else list(DROP_TRIGGERS["sqlite"])
                store._write(lambda tx, d=ddl: [tx.exec(s) for s in [*DROP_TRIGGERS["sqlite"], *d]])
                rate, p50, p99 = pairs(store, args.pairs)
                rates[label].append(rate)
                print(f"  {label:<17} {rate:7.0f} pairs/s  p50 {p50:5.0f} µs  p99 {p99:6.0f} µs", flush=True)
        store.close()
    with_t, without = statistics.median(rates["with triggers"]), statistics.median(rates["without triggers"])
    print(f"SQLite reserve+settle, median of {args.rounds} rounds x {args.pairs} pairs: {without:.0f} pairs/s without"
          f" triggers, {with_t:.0f} with ({100 * (with_t / without - 1):+.1f} %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--calls", type=int, default=40, help="timed calls per request and role (>= 30)")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--reuse", action="store_true", help="reuse data loaded by an earlier run")
    parser.add_argument("--write-cost", action="store_true", help="only measure the triggers' write-path cost")
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.write_cost:
        write_cost(args)
        return
    print(f"bench_visibility: {args.events:,} events, {args.calls} calls each; load average {os.getloadavg()}")
    if args.only in (None, "sqlite"):
        path = Path(f"/tmp/costplane-bench-visibility-{args.events}.db")
        if not args.reuse:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        run("sqlite", f"sqlite:///{path}", args, path)
    if args.only in (None, "postgres"):
        schema = f"bench_visibility_{args.events}"
        with psycopg.connect(PG, autocommit=True, connect_timeout=3) as conn:
            if not args.reuse:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        run("postgres", f"{PG}{'&' if '?' in PG else '?'}schema={schema}", args, None)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
