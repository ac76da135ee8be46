"""What writing a governed call's ledger rows costs on SQLite: CPU µs per call, by write path.

    .venv/bin/python benchmarks/bench_event_writes.py                  # 4,000 calls, 5 rounds
    .venv/bin/python benchmarks/bench_event_writes.py --calls 8000 --rounds 7 --batch 40
    .venv/bin/python benchmarks/bench_event_writes.py --existing 1000000 --rounds 1   # on a big ledger

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

`--existing N` first writes N calls' rows (random ids, as a ledger written before time-ordered ids
has) into a template database that every variant's database is copied from: what the writes
cost on a ledger of that size, where a random page is rarely the one written just before.

It prints CPU µs per call (the thread's CPU time: SQLite runs in the calling thread), the minimum
and the median over rounds.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from costplane.attribution.context import Context
from costplane.core.decider import new_id
from costplane.ledger.lease_store import LeasedRecord
from costplane.ledger.queries import Tx
from costplane.ledger.sqlite import SqliteStore
from costplane.ledger.types import CostEvent, DecisionRecord
from costplane.pricing.types import TokenUsage

T = TypeVar("T")
T0 = datetime(2026, 12, 7, 12, tzinfo=UTC)


class _JournalOnDisk(SqliteStore):
    """Every write with SQLite's default temp_store."""

    def _call_write(self, body: Callable[[Tx], T]) -> T:
        return self._write(body)


class _PerRowTrigger(_JournalOnDisk):
    """Batches insert unmarked rows: the rollup trigger adds each one."""

    def _batch_inserts(self, events: Sequence[CostEvent]) -> tuple[list[tuple[str, Any]], bool]:
        return [self._event_insert(e) for e in events], False


class _PerEventProbe(_PerRowTrigger):
    """The lease writer reconciles its events one probe each."""

    def _reconcile_many(self, tx: Tx, events: Sequence[CostEvent]) -> None:
        for event in events:
            if event.response_id or event.trace_id:
                self._reconcile(tx, event, True)


VARIANTS: dict[str, type[SqliteStore]] = {"shipped": SqliteStore, "journal on disk": _JournalOnDisk,
                                          "per-row trigger": _PerRowTrigger,
                                          "per-event probe": _PerEventProbe, "random ids": SqliteStore}  # fmt: skip
RANDOM_IDS = frozenset({"per-event probe", "random ids"})  # the variants whose calls have uuid4 ids


def _random_id(prefix: str) -> str:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=40, help="calls per lease-writer batch (the writer's cap)")
    parser.add_argument("--existing", type=int, default=0, help="calls' rows already in the ledger (default 0)")
    args = parser.parse_args()
    datasets = {"time-ordered": calls(args.calls), "random": calls(args.calls, _random_id)}
    work_of = {name: datasets["random" if name in RANDOM_IDS else "time-ordered"] for name in VARIANTS}
    records_of = {name: [LeasedRecord(d, (), (), e) for e, d in work] for name, work in work_of.items()}
    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template.db"
        base = SqliteStore(template)
        base.migrate()
        for start in range(0, args.existing, 20_000):
            base.apply_leased([LeasedRecord(d, (), (), e) for e, d in calls(min(20_000, args.existing - start),
                                                                             _random_id)])
        base.close()
        for rnd in range(args.rounds):
            for path in ("lease writer", "per call"):
                stores = {}
                for index, (name, cls) in enumerate(VARIANTS.items()):
                    copy = Path(tmp) / f"{rnd}-{path[0]}-{index}.db"
                    shutil.copyfile(template, copy)
                    stores[name] = cls(copy)
                spent = dict.fromkeys(VARIANTS, 0.0)
                step = args.batch if path == "lease writer" else 1
                for i, start in enumerate(range(0, args.calls, step)):
                    order = list(VARIANTS) if i % 2 == 0 else list(reversed(VARIANTS))
                    for name in order:
                        store = stores[name]
                        began = time.thread_time()
                        if path == "lease writer":
                            store.apply_leased(records_of[name][start:start + step])
                        else:
                            event, decision = work_of[name][start]
                            store.record_decision(decision)
                            store.record_event(event)
                        spent[name] += time.thread_time() - began
                for index, (name, store) in enumerate(stores.items()):
                    results.setdefault((path, name), []).append(spent[name] / args.calls * 1e6)
                    store.close()
                    (Path(tmp) / f"{rnd}-{path[0]}-{index}.db").unlink()
    print(f"## SQLite: CPU µs per call's ledger rows ({args.calls:,} calls on a ledger of {args.existing:,}, "
          f"{args.rounds} rounds, lease-writer batches of {args.batch})\n")
    print("| path | variant | min | median | vs shipped (median) |")
    print("|---|---|---:|---:|---:|")
    for path in ("lease writer", "per call"):
        base = statistics.median(results[(path, "shipped")])
        for name in VARIANTS:
            values = results[(path, name)]
            print(f"| {path} | {name} | {min(values):.1f} | {statistics.median(values):.1f} |"
                  f" {statistics.median(values) / base:.2f}× |")


if __name__ == "__main__":
    main()
