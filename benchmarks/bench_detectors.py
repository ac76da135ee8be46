"""Waste detectors from the store (loading included) over a scaled synthetic history.

    .venv/bin/python benchmarks/bench_detectors.py --events 1000000 --store sqlite
    .venv/bin/python benchmarks/bench_detectors.py --events 10000000 --store sqlite --reuse
    .venv/bin/python benchmarks/bench_detectors.py --events 1000000 --store postgres [--pg URL]
    .venv/bin/python benchmarks/bench_detectors.py --events 200000 --store sqlite --reuse --compare

The history is the seeded synthetic one (every planted pattern, per-outcome amplification
included) generated in chunks of ~94k events (seed 1000+i, run ids suffixed by the chunk so runs
of different chunks never merge) and bulk-inserted: SQLite `executemany` in big transactions,
PostgreSQL `COPY`. SQLite lives in /tmp/costplane-bench-detectors-<N>.db, PostgreSQL in schema
`bench_detectors_<N>`; `--reuse` keeps an existing one (the load is minutes at 10 M).

Then `run_detectors(load_history(store, …))` runs once — the store-backed path: grouping in SQL,
compact row streams where rows are needed, the independent heavy reads on a second thread — and the
time of each detector is printed (each alone, so without that overlap), with wall and CPU time
(`time.process_time`: both threads) and the load average.
`--compare` also runs the in-memory path (every decision and event as objects, as before) and
checks the findings are identical (only sensible up to ~1 M events).
"""

from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from costplane.attribution.context import DIMENSIONS
from costplane.ledger import Store, open_store
from costplane.ledger.codec import (
    DECISION_COLUMNS,
    EVENT_COLUMNS,
    column_list,
    decision_to_row,
    dump_json,
    event_to_row,
    to_us,
)
from costplane.ledger.runtypes import OutcomeRecord
from costplane.optimize.detectors import DETECTORS, run_detectors
from costplane.optimize.findings import DetectorInput, Finding
from costplane.optimize.history import History, load_history
from costplane.optimize.synthetic import SyntheticHistory, SyntheticSpec, generate, synthetic_config
from costplane.pricing.catalog import Catalog

PG_DEFAULT = os.environ.get("COSTPLANE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
CHUNK_SCALE = 10


def chunk_spec(seed: int) -> SyntheticSpec:
    s = CHUNK_SCALE
    return SyntheticSpec.all_patterns(
        seed=seed, control_calls=600 * s, oversized_calls=1000 * s, faq_questions=40 * s,
        inflation_calls=800 * s, amplification_runs=300 * s, chatter_runs=200 * s, leaked_calls=600 * s,
        embeddings=True, embedded_documents=40 * s, outcome_amplification=True, outcome_runs=100 * s)


_RUN = 2 + DIMENSIONS.index("run")  # the run column of an event row


def chunks(n_events: int, catalog: Catalog) -> Iterator[tuple[SyntheticHistory, int]]:
    written, chunk = 0, 0
    while written < n_events:
        history = generate(chunk_spec(1000 + chunk), catalog)
        written += len(history.events)
        yield history, chunk
        chunk += 1


def _relabel(row: tuple[Any, ...], run_at: int, context_at: int | None, chunk: int) -> tuple[Any, ...]:
    """Runs of one chunk get a suffix: random 6-digit run ids of different chunks must not merge."""
    run = row[run_at]
    if not run:
        return row
    out = list(row)
    out[run_at] = f"{run}.{chunk}"
    if context_at is not None:
        out[context_at] = row[context_at].replace(f'"run":"{run}"', f'"run":"{run}.{chunk}"')
    return tuple(out)


def rows(history: SyntheticHistory, chunk: int) -> tuple[list[tuple[Any, ...]], ...]:
    """(decision rows, event rows, outcome rows) as the store writes them, runs relabelled."""
    return ([_relabel(decision_to_row(d), 11, 8, chunk) for d in history.decisions],
            [_relabel(event_to_row(e), _RUN, None, chunk) for e in history.events],
            [_relabel(outcome_row(o), 4, 7, chunk) for o in history.outcomes])


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({column_list(columns)}) VALUES ({', '.join('?' for _ in columns)})"


_OUTCOME_COLUMNS = ("id", "ts", "outcome", "value", "run", "agent", "tier", "context")


def outcome_row(outcome: OutcomeRecord) -> tuple[Any, ...]:
    """The row `record_outcome` writes (same columns, same context JSON)."""
    ctx = outcome.context
    context: dict[str, Any] = dict(ctx.dimensions())
    if ctx.tags:
        context["tags"] = dict(ctx.tags)
    return (outcome.id, to_us(outcome.ts), outcome.outcome, str(outcome.value), ctx.run, ctx.agent, ctx.tier,
            dump_json(context))


def load_sqlite(path: str, n_events: int, catalog: Catalog) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -400000")
    # bulk load: indexes are dropped and rebuilt at the end (one sort each, not 10 M random inserts)
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                           " AND tbl_name IN ('decisions', 'cost_events', 'outcomes')").fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    total = 0
    for history, chunk in chunks(n_events, catalog):
        decisions, events, outcomes = rows(history, chunk)
        conn.execute("BEGIN")
        conn.executemany(_insert_sql("decisions", DECISION_COLUMNS), decisions)
        conn.executemany(_insert_sql("cost_events", EVENT_COLUMNS), events)
        conn.executemany(_insert_sql("outcomes", _OUTCOME_COLUMNS), outcomes)
        conn.execute("COMMIT")
        total += len(events)
        print(f"  loaded {total:,} events", flush=True)
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    conn.close()


def load_postgres(url: str, n_events: int, catalog: Catalog) -> None:
    total = 0
    with psycopg.connect(url) as conn:
        # bulk load: secondary indexes are dropped and rebuilt at the end
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
            " AND tablename IN ('decisions', 'cost_events', 'outcomes') AND indexname NOT LIKE '%%_pkey'").fetchall()
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        conn.commit()
        for history, chunk in chunks(n_events, catalog):
            decisions, events, outcomes = rows(history, chunk)
            with conn.cursor() as cur:
                for table, columns, table_rows in (("decisions", DECISION_COLUMNS, decisions),
                                                   ("cost_events", EVENT_COLUMNS, events),
                                                   ("outcomes", _OUTCOME_COLUMNS, outcomes)):
                    with cur.copy(f"COPY {table} ({column_list(columns)}) FROM STDIN") as copy:
                        for row in table_rows:
                            copy.write_row(row)
            conn.commit()
            total += len(events)
            print(f"  loaded {total:,} events", flush=True)
        for _, sql in indexes:
            conn.execute(sql)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:  # VACUUM: sets the visibility map (index-only scans)
        conn.execute("VACUUM ANALYZE cost_events")
        conn.execute("VACUUM ANALYZE decisions")
        conn.execute("VACUUM ANALYZE outcomes")


def _timed_detectors(store: Store, since: Any, until: Any, inputs: DetectorInput) -> tuple[list[Finding], float]:
    """Every detector by name (per-detector time printed), then all together as the CLI runs them."""
    history = load_history(store, since, until)
    print("per detector, in run order (a detector reuses the queries an earlier one made: the model groups,"
          " the agents' runs):")
    for name in DETECTORS:
        started, cpu = time.perf_counter(), time.process_time()
        found = run_detectors(history, inputs, [name])
        print(f"  {name:26s} {time.perf_counter() - started:7.2f}s wall {time.process_time() - cpu:7.2f}s cpu"
              f"  {len(found)} finding(s)", flush=True)
    gc.collect()
    started, cpu = time.perf_counter(), time.process_time()
    findings = run_detectors(load_history(store, since, until), inputs)
    elapsed = time.perf_counter() - started
    print(f"  (cpu of this process, both threads: {time.process_time() - cpu:.2f}s; load average"
          f" {' '.join(f'{v:.2f}' for v in os.getloadavg())})")
    return findings, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--reuse", action="store_true", help="keep an existing store of this size")
    parser.add_argument("--pg", default=PG_DEFAULT)
    parser.add_argument("--load-only", action="store_true", help="write the store, run nothing")
    parser.add_argument("--compare", action="store_true", help="also run the in-memory path, compare findings")
    args = parser.parse_args()
    catalog, config = Catalog.load(), synthetic_config()
    inputs = DetectorInput(config, catalog)
    first = generate(chunk_spec(1000), catalog)
    since, until = first.start, first.end
    if args.store == "sqlite":
        path = f"/tmp/costplane-bench-detectors-{args.events}.db"
        url = f"sqlite:///{path}"
        exists = os.path.exists(path)
        if exists and not args.reuse:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)
            exists = False
    else:
        schema = f"bench_detectors_{args.events}"
        with psycopg.connect(args.pg, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
                                  (schema,)).fetchone() is not None
            if exists and not args.reuse:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
                exists = False
            if not exists:
                conn.execute(f"CREATE SCHEMA {schema}")
        url = f"{args.pg}{'&' if '?' in args.pg else '?'}schema={schema}"
    store = open_store(url)
    store.migrate()
    if not exists:
        started = time.perf_counter()
        if args.store == "sqlite":
            load_sqlite(path, args.events, catalog)
        else:
            load_postgres(f"{args.pg}{'&' if '?' in args.pg else '?'}options=-csearch_path%3D{schema}",
                          args.events, catalog)
        print(f"loaded in {time.perf_counter() - started:.0f}s")
    if args.load_only:
        store.close()
        return
    n = store.count_events()
    print(f"store: {args.store}, {n:,} cost events, window {since:%Y-%m-%d} .. {until:%Y-%m-%d}")
    findings, elapsed = _timed_detectors(store, since, until, inputs)
    print(f"all detectors from the store (loading included): {elapsed:.2f}s for {n:,} events "
          f"({n / elapsed:,.0f} events/s)")
    for f in findings:
        print(f"  {f.detector:26s} {f.monthly_saving_nano / 1e9:14,.2f} USD/month  {f.title}")
    if args.compare:
        started = time.perf_counter()
        memory = History.build(since, until, store.list_decisions(since=since, limit=2_000_000_000),
                               store.list_events(since=since, limit=2_000_000_000),
                               store.list_outcomes(since=since, until=until))
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        expected = run_detectors(memory, inputs)
        print(f"in-memory path: load {loaded:.2f}s + detectors {time.perf_counter() - started:.2f}s; "
              f"findings identical: {expected == findings}")
    store.close()


if __name__ == "__main__":
    main()
