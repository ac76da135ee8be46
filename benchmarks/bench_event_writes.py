"""What writing a governed call's ledger rows costs on SQLite: CPU µs per call, by write path.

    .venv/bin/python benchmarks/bench_event_writes.py                  # 4,000 calls, 5 rounds
    .venv/bin/python benchmarks/bench_event_writes.py --calls 8000 --rounds 7 --batch 40
    .venv/bin/python benchmarks/bench_event_writes.py --existing 1000000 --rounds 1   # on a big ledger
    .venv/bin/python benchmarks/bench_event_writes.py --store postgres   # the lease writer on PostgreSQL

Each call is what the gateway writes for one governed chat completion: its cost event (one team,
one model, a run and a request hash, the call ids, a minute of timestamps) and its decision
record. Two paths are measured:

* **lease writer** — `apply_leased` in batches of `--batch` calls (the background writer of
  lease-based budgets);
* **per call** — `record_decision` and `record_event` for each call, a transaction each: the
  rows a store-direct admission and settlement write (without the reservation and the budget
  counters' rows).

and each path in three variants, all in ONE process, each round on fresh databases, the
variants alternated batch by batch (so drift of a shared machine falls on all alike):

* `shipped` — as the store runs it;
* `journal on disk` — the call's transaction with SQLite's default `temp_store`, whose statement
  journal spills to a temp file (the store's writes before `_call_write`);
* `per-row trigger` — batches insert unmarked rows, so the rollup trigger adds each (the store
  before schema v17); plus the journal on disk;
* `per-event probe` — the lease writer looks for earlier OTLP events of each call with a probe of
  its own instead of one per batch, and the calls have random ids (below); plus both of the above:
  the store as it was before all four changes;
* `random ids` — the shipped store, but the calls' event, decision and reservation ids are random
  (uuid4) instead of the product's time-ordered ids (`core.decider.new_id`, a UUIDv7): every insert
  then writes a random page of each B-tree keyed by them.

`--store postgres` measures the lease-writer path only, each variant in a fresh schema of `--pg`
(env COSTPLANE_TEST_PG), without the journal variant (SQLite's): read the wall time there too,
since the server's work (the trigger, the probes) is not in the writing thread's CPU.

`--existing N` first writes N calls' rows (random ids, as a ledger written before time-ordered ids
has) into a template database that every variant's database is copied from: what the writes
cost on a ledger of that size, where a random page is rarely the one written just before.

It prints µs per call: the writing thread's CPU time (SQLite runs in the calling thread), minimum
and median over rounds, and the median wall time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from costplane.attribution.context import Context
from costplane.core.decider import new_id
from costplane.ledger.base import SqlStore
from costplane.ledger.lease_store import LeasedRecord
from costplane.ledger.postgres import PostgresStore
from costplane.ledger.queries import Tx
from costplane.ledger.sqlite import SqliteStore
from costplane.ledger.types import CostEvent, DecisionRecord
from costplane.pricing.types import TokenUsage

T = TypeVar("T")
T0 = datetime(2026, 12, 7, 12, tzinfo=UTC)


class _JournalOnDisk:
    """Every write with SQLite's default temp_store (a mixin before SqliteStore)."""

    def _call_write(self, body: Callable[[Tx], T]) -> T:
        return self._write(body)  # type: ignore[attr-defined, no-any-return]


class _PerRowTrigger:
    """Batches insert unmarked rows: the rollup trigger adds each one (a mixin before a store)."""

    def _batch_inserts(self, events: Sequence[CostEvent]) -> tuple[list[tuple[str, Any]], bool]:
        return [self._event_insert(e) for e in events], False  # type: ignore[attr-defined]


class _PerEventProbe:
    """The lease writer reconciles its events one probe each (a mixin before a store)."""

    def _reconcile_many(self, tx: Tx, events: Sequence[CostEvent]) -> None:
        for event in events:
            if event.response_id or event.trace_id:
                self._reconcile(tx, event, True)  # type: ignore[attr-defined]


def _variants(base: type[SqlStore]) -> dict[str, type[SqlStore]]:
    """The variants over one store class; SQLite also has the journal on disk."""
    disk: tuple[type, ...] = (_JournalOnDisk,) if base is SqliteStore else ()
    out: dict[str, type[SqlStore]] = {"shipped": base}
    if disk:
        out["journal on disk"] = type("JournalOnDisk", (*disk, base), {})
    out["per-row trigger"] = type("PerRowTrigger", (_PerRowTrigger, *disk, base), {})
    out["per-event probe"] = type("PerEventProbe", (_PerEventProbe, _PerRowTrigger, *disk, base), {})
    out["random ids"] = base
    return out


RANDOM_IDS = frozenset({"per-event probe", "random ids"})  # the variants whose calls have uuid4 ids


def random_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def calls(n: int, make_id: Callable[[str], str] = new_id) -> list[tuple[CostEvent, DecisionRecord]]:
    out = []
    for i in range(n):
        ts = T0 + timedelta(microseconds=i * 15_000)  # 4,000 calls over a minute
        ctx = Context(org="acme", team="ml", project="bench", agent="support-bot", run=f"run-{i // 7}",
                      tier="prod", key_id="key-bench")  # fmt: skip
        decision = DecisionRecord(
            id=make_id("dec"), ts=ts, hook="llm.request", effect="allow", bundle_revision="sha256:bench",
            context=ctx, input={"model": "gpt-4o-mini", "input_tokens": 24, "max_tokens": 16},
            result={"model": "gpt-4o-mini", "provider": "openai", "max_tokens": 16, "reserved_nano": 14_000},
            policies=("allow-all",), budgets=("team-ml",), reason="allowed", key_id="key-bench", status_code=200)
        event = CostEvent(
            id=make_id("evt"), ts=ts, context=ctx, provider="openai", model="gpt-4o-mini",
            cost_nano=13_200, usage=TokenUsage(input_tokens=24, output_tokens=16), decision_id=decision.id,
            reservation_id=make_id("res"), latency_ms=3, request_hash=f"h{i % 97}",
            requested_model="gpt-4o-mini", response_id=f"chatcmpl-{uuid.uuid4().hex}", trace_id=uuid.uuid4().hex,
            span_id=uuid.uuid4().hex[:16])
        out.append((event, decision))
    return out


def _postgres_store(pg: str, cls: type[SqlStore], schemas: list[str]) -> SqlStore:
    """A store of `cls` in a fresh schema of `pg` (dropped at the end)."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    schemas.append(schema)
    store = cls(f"{pg}{'&' if '?' in pg else '?'}schema={schema}")  # type: ignore[call-arg]
    store.migrate()
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=40, help="calls per lease-writer batch (the writer's cap)")
    parser.add_argument("--existing", type=int, default=0, help="calls' rows already in the ledger (SQLite; default 0)")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg", default=os.environ.get("COSTPLANE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    variants = _variants(PostgresStore if args.store == "postgres" else SqliteStore)
    paths = ("lease writer",) if args.store == "postgres" else ("lease writer", "per call")
    datasets = {"time-ordered": calls(args.calls), "random": calls(args.calls, random_id)}
    work_of = {name: datasets["random" if name in RANDOM_IDS else "time-ordered"] for name in variants}
    records_of = {name: [LeasedRecord(d, (), (), e) for e, d in work] for name, work in work_of.items()}
    results: dict[tuple[str, str], list[float]] = {}
    walls: dict[tuple[str, str], list[float]] = {}
    schemas: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template.db"
        if args.store == "sqlite":
            base = SqliteStore(template)
            base.migrate()
            for start in range(0, args.existing, 20_000):
                base.apply_leased([LeasedRecord(d, (), (), e) for e, d in calls(min(20_000, args.existing - start),
                                                                                 random_id)])
            base.close()
        try:
            for rnd in range(args.rounds):
                for path in paths:
                    stores: dict[str, SqlStore] = {}
                    for index, (name, cls) in enumerate(variants.items()):
                        if args.store == "postgres":
                            stores[name] = _postgres_store(args.pg, cls, schemas)
                            continue
                        copy = Path(tmp) / f"{rnd}-{path[0]}-{index}.db"
                        shutil.copyfile(template, copy)
                        stores[name] = cls(copy)  # type: ignore[call-arg]
                    spent = dict.fromkeys(variants, 0.0)
                    wall = dict.fromkeys(variants, 0.0)
                    step = args.batch if path == "lease writer" else 1
                    for i, start in enumerate(range(0, args.calls, step)):
                        order = list(variants) if i % 2 == 0 else list(reversed(variants))
                        for name in order:
                            store = stores[name]
                            began, began_wall = time.thread_time(), time.perf_counter()
                            if path == "lease writer":
                                store.apply_leased(records_of[name][start:start + step])
                            else:
                                event, decision = work_of[name][start]
                                store.record_decision(decision)
                                store.record_event(event)
                            spent[name] += time.thread_time() - began
                            wall[name] += time.perf_counter() - began_wall
                    for index, (name, store) in enumerate(stores.items()):
                        results.setdefault((path, name), []).append(spent[name] / args.calls * 1e6)
                        walls.setdefault((path, name), []).append(wall[name] / args.calls * 1e6)
                        store.close()
                        if args.store == "sqlite":
                            (Path(tmp) / f"{rnd}-{path[0]}-{index}.db").unlink()
        finally:
            if schemas:
                with psycopg.connect(args.pg, autocommit=True) as conn:
                    for schema in schemas:
                        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    label = "SQLite" if args.store == "sqlite" else "PostgreSQL"
    print(f"## {label}: µs per call's ledger rows ({args.calls:,} calls on a ledger of {args.existing:,}, "
          f"{args.rounds} rounds, lease-writer batches of {args.batch}); CPU of the writing thread, and wall\n")
    print("| path | variant | CPU min | CPU median | vs shipped (median) | wall median |")
    print("|---|---|---:|---:|---:|---:|")
    for path in paths:
        base_cpu = statistics.median(results[(path, "shipped")])
        for name in variants:
            values = results[(path, name)]
            print(f"| {path} | {name} | {min(values):.1f} | {statistics.median(values):.1f} |"
                  f" {statistics.median(values) / base_cpu:.2f}× | {statistics.median(walls[(path, name)]):.1f} |")


if __name__ == "__main__":
    main()
