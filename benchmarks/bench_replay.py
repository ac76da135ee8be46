"""Policy replay over a stored history: `costplane policy replay` of N recorded requests, loading included.

    .venv/bin/python benchmarks/bench_replay.py                      # 1,000,000 requests, SQLite
    .venv/bin/python benchmarks/bench_replay.py -n 100000            # develop at 100 k
    .venv/bin/python benchmarks/bench_replay.py -n 1000000 --reuse   # keep the ledger of an earlier run
    .venv/bin/python benchmarks/bench_replay.py -n 100000 --store postgres   # env COSTPLANE_TEST_PG

Writes N `llm.request` decisions over 30 days ending now, with their cost events (a realistic mix:
five teams, chat and embeddings on OpenAI and Anthropic models, 2 % recorded denials, agent runs,
deterministic requests that a cache could serve, priced with the Catalog), bulk-inserted into a
SQLite file under /tmp (or a throw-away PostgreSQL schema). Then runs the real CLI in a subprocess —
`costplane policy replay CANDIDATE --since … --format json` — over a candidate bundle with routing,
deny, max_tokens and cache policies and three budgets (daily, per run, route-on-exceed), and prints
its wall time (store read + decode + each request decided again by the decision core over the
in-memory ledger + report), requests/s and the subprocess's peak RSS.
Also times the store read alone (`optimize.stream.iter_requests`), in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import psycopg

from costplane.attribution.context import Context
from costplane.config import Config
from costplane.ledger import CostEvent, DecisionRecord, Store, open_store
from costplane.ledger.base import SqlStore
from costplane.ledger.codec import decision_to_row, event_to_row
from costplane.ledger.queries import INSERT_DECISION, INSERT_EVENT, Tx
from costplane.optimize.stream import event_lag, iter_requests
from costplane.pricing.catalog import Catalog
from costplane.pricing.types import TokenUsage

ROOT = Path(__file__).resolve().parent.parent
WORK = Path("/tmp/costplane-bench-replay")
PG = os.environ.get("COSTPLANE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
DAYS = 30
CHUNK = 20_000

CONFIG = """store: {store}
providers:
  openai: {{type: openai, base_url: 'http://127.0.0.1:9/v1', models: ['gpt-*', 'o1*', 'text-embedding-*'],
           pricing_provider: openai}}
  anthropic: {{type: anthropic, base_url: 'http://127.0.0.1:9/v1', models: ['claude-*'], pricing_provider: anthropic}}
"""

CANDIDATE = """
kind: Policy
name: experiments-use-small-models
on: llm.request
when: ctx.tier == "experiment" && request.model == "gpt-4o" && request.input_tokens < 4000
effect: route
set: {model: gpt-4o-mini}
reason: experiment tier uses the small model for short prompts
---
kind: Policy
name: support-on-haiku
on: llm.request
when: ctx.team == "support" && request.model == "claude-3-5-sonnet"
effect: route
set: {model: claude-3-5-haiku}
---
kind: Policy
name: no-o1-for-crawlers
on: llm.request
when: ctx.agent == "crawler" && request.model.startsWith("o1")
effect: deny
reason: the crawler may not use reasoning models
---
kind: Policy
name: search-short-answers
on: llm.request
when: ctx.team == "search"
effect: mutate
set: {max_tokens: 512}
---
kind: Policy
name: faq-cache
on: llm.request
when: ctx.agent == "faq-bot"
effect: mutate
set: {cache: true}
---
kind: Budget
name: ml-daily
scope: ctx.team == "ml"
amount: 40 USD
window: {calendar: day, timezone: Europe/Berlin}
---
kind: Budget
name: per-run
scope: ctx.run != ""
per: [run]
amount: 0.25 USD
window: lifetime
---
kind: Budget
name: web-monthly
scope: ctx.team == "web"
amount: 150 USD
window: {calendar: month, timezone: UTC}
on_exceed: {route: gpt-4o-mini}
"""

# (team, agent or "", tier, weight, models with weights, embedding share)
PROFILES: list[tuple[str, str, str, int, list[tuple[str, int]]]] = [
    ("ml", "research-agent", "production", 20, [("gpt-4o", 5), ("o1-mini", 1), ("gpt-4o-mini", 4)]),
    ("ml", "", "experiment", 15, [("gpt-4o", 6), ("claude-3-5-sonnet", 2), ("gpt-4o-mini", 2)]),
    ("support", "faq-bot", "production", 20, [("claude-3-5-sonnet", 5), ("gpt-4o-mini", 5)]),
    ("search", "search-api", "production", 20, [("text-embedding-3-small", 6), ("gpt-4o-mini", 4)]),
    ("web", "crawler", "production", 15, [("gpt-4o", 4), ("o1-mini", 1), ("gpt-4o-mini", 5)]),
    ("data", "", "production", 10, [("gpt-4o-mini", 7), ("claude-3-5-haiku", 3)]),
]


class Generator:
    def __init__(self, n: int, end: datetime, seed: int = 11) -> None:
        self.n, self.end, self.rng = n, end, random.Random(seed)
        self.start = end - timedelta(days=DAYS)
        self.catalog = Catalog.load()
        self.sheets: dict[tuple[str, str, int], Any] = {}
        self.weights = [p[3] for p in PROFILES]
        self.runs: dict[str, tuple[str, int]] = {}

    def sheet(self, model: str, provider: str, ts: datetime) -> Any:
        key = (model, provider, ts.toordinal())
        if key not in self.sheets:
            self.sheets[key] = self.catalog.resolve(model, provider, ts)
        return self.sheets[key]

    def run_of(self, agent: str) -> str | None:
        if not agent:
            return None
        run, left = self.runs.get(agent, ("", 0))
        if left <= 0:  # an agent run makes 3-12 calls
            run, left = f"run-{agent}-{uuid.UUID(int=self.rng.getrandbits(128)).hex[:12]}", self.rng.randint(3, 12)
        self.runs[agent] = (run, left - 1)
        return run

    def one(self, i: int) -> tuple[tuple[Any, ...], tuple[Any, ...] | None]:
        rng = self.rng
        team, agent, tier, _, models = rng.choices(PROFILES, self.weights)[0]
        model = rng.choices([m for m, _ in models], [w for _, w in models])[0]
        ts = self.start + timedelta(microseconds=int(i * DAYS * 86_400_000_000 / self.n) + rng.randrange(1000))
        ctx = Context(org="acme", team=team, project=f"{team}-prod", owner=f"{team}-lead", tier=tier,
                      agent=agent or None, run=self.run_of(agent), key_id=f"key_{team}")
        provider = "anthropic" if model.startswith("claude") else "openai"
        embedding = model.startswith("text-embedding")
        endpoint = "embeddings" if embedding else "messages" if provider == "anthropic" else "chat.completions"
        input_tokens = rng.randint(20, 800) if embedding else int(rng.lognormvariate(7, 1.0)) + 50
        output_tokens = 0 if embedding else rng.randint(20, 900)
        temperature = 0 if agent == "faq-bot" or embedding else 0.7
        body = f"q-{rng.randrange(3000)}" if temperature == 0 else f"r-{i}"  # faq questions repeat
        request_hash = uuid.uuid5(uuid.NAMESPACE_URL, f"{model}|{body}").hex
        decision_id, event_id = f"dec_b{i:09d}", f"evt_b{i:09d}"
        denied = rng.random() < 0.02
        sheet = self.sheet(model, provider, ts)
        usage = TokenUsage(input_tokens=input_tokens, output_tokens=output_tokens)
        max_tokens = 0 if embedding else 1024
        decision = DecisionRecord(
            id=decision_id, ts=ts, hook="llm.request", effect="deny" if denied else "allow", bundle_revision="bench",
            context=ctx, key_id=ctx.key_id, status_code=402 if denied else 200,
            reason="budget 'x' exceeded" if denied else "",
            input={"endpoint": endpoint, "model": model, "input_tokens_bound": input_tokens + 64,
                   "input_tokens_estimate": input_tokens, "max_tokens": max_tokens, "stream": False,
                   "protocol": provider, "params": {"temperature": temperature},
                   "cache_hash": request_hash if temperature == 0 else None},
            result={} if denied else {"model": model, "provider": provider, "max_tokens": max_tokens,
                                      "reserved_nano": sheet.max_cost_nano(input_tokens + 64, max_tokens),
                                      "params": {}})
        if denied:
            return decision_to_row(decision), None
        event = CostEvent(
            id=event_id, ts=ts + timedelta(milliseconds=rng.randint(200, 4000)), context=ctx, provider=provider,
            model=model, cost_nano=sheet.cost_nano(usage), endpoint=endpoint, usage=usage,
            decision_id=decision_id, latency_ms=800, request_hash=request_hash, requested_model=model)
        return decision_to_row(decision), event_to_row(event)


def write(store: Store, n: int, end: datetime) -> None:
    gen = Generator(n, end)
    started = time.perf_counter()
    for lo in range(0, n, CHUNK):
        decisions, events = [], []
        for i in range(lo, min(n, lo + CHUNK)):
            d, e = gen.one(i)
            decisions.append(d)
            if e is not None:
                events.append(e)

        def body(tx: Tx, d: list[Any] = decisions, e: list[Any] = events) -> None:
            tx.many(INSERT_DECISION, d)
            tx.many(INSERT_EVENT, e)

        cast(SqlStore, store)._write(body)  # bulk load for the benchmark only: one transaction per chunk
        print(f"\r  wrote {min(n, lo + CHUNK):,} / {n:,} ({time.perf_counter() - started:.0f}s)", end="", flush=True)
    print()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=1_000_000, help="recorded requests")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--reuse", action="store_true", help="keep the ledger of an earlier run with the same -n")
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    if args.store == "sqlite":
        path = WORK / f"ledger-{args.n}.db"
        url = f"sqlite:///{path}"
        fresh = not (args.reuse and path.exists())
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        schema = f"bench_replay_{args.n}"
        url = f"{PG}{'&' if '?' in PG else '?'}schema={schema}"
        with psycopg.connect(PG, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
                                  (schema,)).fetchone() is not None
            fresh = not (args.reuse and exists)
            if fresh:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                conn.execute(f"CREATE SCHEMA {schema}")
    store = open_store(url)
    store.migrate()
    if fresh:
        print(f"writing {args.n:,} recorded requests to {url} …")
        write(store, args.n, datetime.now(UTC))
        if args.store == "postgres":
            # as autovacuum would, eventually: without statistics of the bulk load PostgreSQL plans
            # each (ts, id) page as a sort of every row after it (2.7 s a page instead of 16 ms)
            with psycopg.connect(PG, autocommit=True, options=f"-csearch_path={schema}") as conn:
                conn.execute("VACUUM ANALYZE decisions")
                conn.execute("VACUUM ANALYZE cost_events")
    first = store.replay_decisions(("llm.request",), limit=1)
    if not first:
        sys.exit("the ledger is empty: run without --reuse")
    hours = int((datetime.now(UTC) - first[0].ts).total_seconds() // 3600) + 2
    config = WORK / f"costplane-{args.store}.yaml"
    config.write_text(CONFIG.format(store=json.dumps(url)))
    candidate = WORK / "candidate"
    candidate.mkdir(exist_ok=True)
    (candidate / "candidate.yaml").write_text(CANDIDATE)

    started, cpu = time.perf_counter(), time.process_time()
    since = datetime.now(UTC) - timedelta(hours=hours)
    read = sum(1 for _ in iter_requests(store, since, datetime.now(UTC), lag=event_lag(Config(path=None)),
                                        batch=args.batch))
    read_s, read_cpu = time.perf_counter() - started, time.process_time() - cpu
    store.close()
    print(f"store read alone (iter_requests, batch {args.batch}): {read:,} requests in {read_s:.1f}s wall, "
          f"{read_cpu:.1f}s CPU ({read / read_s:,.0f} requests/s wall)")

    command = [str(ROOT / ".venv/bin/costplane"), "policy", "replay", str(candidate), "--since", f"{hours}h",
               "--config", str(config), "--format", "json", "--batch", str(args.batch)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"replay failed ({done.returncode}): {done.stderr or done.stdout}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_mb, child_cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
    report = json.loads(done.stdout)
    n = report["requests"]
    print(f"policy replay ({args.store}): {n:,} requests in {wall:.1f}s wall = {n / wall:,.0f} requests/s "
          f"(target: 1 M <= 60 s); {child_cpu:.1f}s CPU ({n / child_cpu:,.0f} requests per CPU second); "
          f"peak RSS {peak_mb:,.0f} MB")
    print(f"  load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"  changed {report['changed']:,}, newly admitted {report['newly_admitted']:,}; saved "
          f"{report['saved_usd']} USD of {report['recorded_nano'] / 1e9:,.2f} USD; by kind: "
          + ", ".join(f"{k} {v['requests']:,}" for k, v in report["by_kind"].items()))


if __name__ == "__main__":
    main()
