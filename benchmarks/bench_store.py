"""Ledger store benchmark: reserve+settle pairs per second and spend breakdown time.

    .venv/bin/python benchmarks/bench_store.py                 # SQLite + PostgreSQL, 5000 pairs
    .venv/bin/python benchmarks/bench_store.py --pairs 20000 --events 1000000
    .venv/bin/python benchmarks/bench_store.py --only sqlite
    .venv/bin/python benchmarks/bench_store.py --only postgres --pg-path both   # v3 functions vs v2 path

PostgreSQL comes from --pg or env COSTPLANE_TEST_PG (default
postgresql://postgres@127.0.0.1:5432/test); the benchmark works in a throw-away
schema. Single thread, one reserve (one claim + decision) and one settle (event)
per pair: this is the store's share of every governed gateway request.

PostgreSQL runs each write as one server-side function call (schema v3, one
round trip); `--pg-path statements` runs the multi-statement transactions of
schema v2 instead, `--pg-path both` runs the two alternately in one process.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from costplane.attribution.context import Context
from costplane.ledger import BudgetClaim, CostEvent, DecisionRecord, Reservation, Store, open_store
from costplane.ledger.codec import EVENT_COLUMNS, column_list, event_to_row
from costplane.pricing.types import TokenUsage

NOW = datetime(2025, 6, 1, tzinfo=UTC)
CTX = Context(org="acme", team="ml", user="ann", run="run-1", tags={"env": "prod"}, key_id="k1")


def pairs(store: Store, n: int) -> tuple[float, float, float]:
    claims = (
        BudgetClaim("team-ml", "", 0, 0, 5_000, limit_nano=10**18),
        BudgetClaim("per-run", "run=run-1", 0, 0, 5_000, limit_nano=10**18),
    )
    lat: list[float] = []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        rid = uuid.uuid4().hex
        dec = DecisionRecord(f"d{rid}", NOW, "llm.request", "allow", "rev", CTX, {"model": "gpt-4o"},
                             {"effect": "allow"}, ("p",), ("team-ml",))  # fmt: skip
        res = Reservation(rid, claims, NOW, NOW + timedelta(minutes=5), dec.id)
        assert store.reserve(res, dec).ok
        store.settle(rid, CostEvent(f"e{rid}", NOW + timedelta(microseconds=i), CTX, "openai", "gpt-4o",
                                    4_321, usage=TokenUsage(100, 20), reservation_id=rid))  # fmt: skip
        lat.append((time.perf_counter() - t0) * 1e6)
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(lat, n=100)
    return n / elapsed, q[49], q[98]


def _rows(n: int) -> list[tuple[object, ...]]:
    teams, models = ["ml", "web", "data", "ops"], ["gpt-4o", "gpt-4o-mini", "claude", "llama"]
    out = []
    for i in range(n):
        ctx = Context(team=teams[i % 4], user=f"u{i % 97}", run=f"r{i % 1000}", key_id=f"k{i % 13}")
        ev = CostEvent(f"bulk{i}", NOW + timedelta(seconds=i * 2), ctx, "openai", models[(i // 4) % 4],
                       1000 + i % 777, usage=TokenUsage(100, 20))  # fmt: skip
        out.append(event_to_row(ev))
    return out


def bulk_load(kind: str, url: str, sqlite_path: Path | None, schema: str | None, n: int) -> None:
    rows = _rows(n)
    cols = column_list(EVENT_COLUMNS)
    if kind == "sqlite":
        assert sqlite_path is not None
        conn = sqlite3.connect(sqlite_path)
        marks = ", ".join("?" for _ in EVENT_COLUMNS)
        conn.executemany(f"INSERT INTO cost_events ({cols}) VALUES ({marks})", rows)
        conn.commit()
        conn.execute("ANALYZE")
        conn.close()
        return
    with psycopg.connect(url.split("?")[0], options=f"-c search_path={schema}") as pg:
        with pg.cursor() as cur, cur.copy(f"COPY cost_events ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        pg.execute("ANALYZE cost_events")


def breakdowns(store: Store) -> None:
    for label, kwargs in [
        ("total", {}),
        ("by team", {"group_by": ["team"]}),
        ("by team,model per day", {"group_by": ["team", "model"], "bucket": "day"}),
        ("by user where team=ml", {"group_by": ["user"], "where": {"team": "ml"}}),
    ]:
        t0 = time.perf_counter()
        rows = store.spend(**kwargs)  # type: ignore[arg-type]
        print(f"    spend {label:<26} {len(rows):>5} rows  {(time.perf_counter() - t0) * 1000:8.1f} ms")


def run(kind: str, url: str, args: argparse.Namespace, sqlite_path: Path | None, schema: str | None) -> None:
    store = open_store(url)
    store.migrate()
    where = url.split("?")[0]
    if kind == "postgres":
        paths = {"functions": [True], "statements": [False], "both": [True, False, True, False]}[args.pg_path]
    else:
        paths = [True]
    for use_functions in paths:
        label = kind
        if kind == "postgres":
            store.use_functions = use_functions  # type: ignore[attr-defined]
            label = f"postgres ({'functions' if use_functions else 'statements'})"
        pairs(store, min(200, args.pairs))  # warm-up
        rate, p50, p99 = pairs(store, args.pairs)
        print(f"{label:<22} reserve+settle: {rate:8.0f} pairs/s   p50 {p50:7.0f} µs   p99 {p99:7.0f} µs  ({where})")
    if args.events:
        t0 = time.perf_counter()
        bulk_load(kind, url, sqlite_path, schema, args.events)
        print(f"    loaded {args.events:,} events in {time.perf_counter() - t0:.1f} s")
        breakdowns(store)
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--events", type=int, default=0, help="also time spend breakdowns over N events")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--pg-path", choices=["functions", "statements", "both"], default="functions",
                        help="PostgreSQL: v3 server-side functions (default), v2 multi-statement transactions, or both")
    parser.add_argument("--synchronous", default="NORMAL", help="SQLite synchronous (NORMAL or FULL)")
    parser.add_argument("--pg", default=os.environ.get("COSTPLANE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.db"
            run("sqlite", f"sqlite:///{path}?synchronous={args.synchronous}", args, path, None)
    if args.only in (None, "postgres"):
        schema = f"cp_bench_{uuid.uuid4().hex[:8]}"
        try:
            with psycopg.connect(args.pg, autocommit=True, connect_timeout=3) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
        except psycopg.Error as exc:
            print(f"postgres skipped: {str(exc).strip().splitlines()[0]}")
            return
        try:
            sep = "&" if "?" in args.pg else "?"
            run("postgres", f"{args.pg}{sep}schema={schema}", args, None, schema)
        finally:
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
