"""Lease-based budgets: store round trips per request and throughput, N processes on one hot budget.

    .venv/bin/python benchmarks/bench_leases.py                          # PostgreSQL, 3 processes, leases on
    .venv/bin/python benchmarks/bench_leases.py --processes 1            # the one-process reference
    .venv/bin/python benchmarks/bench_leases.py --leases off             # one reservation per request
    .venv/bin/python benchmarks/bench_leases.py --store sqlite --seconds 5

Every process runs `--threads` threads that each loop admit → settle (`reserve` then `settle` of the
ledger: what the decision core does for every governed call, without HTTP or pricing) against ONE
hard team budget with plenty of headroom (it never refuses: "while headroom remains"). With leases
on each process is a `LeasedLedger` (ledger/leases.py) over its own store connection; off, the
store itself. It reports requests per second (aggregate) and **store round trips per request**:
on PostgreSQL every statement the store sends, plus BEGIN and COMMIT of each multi-statement
transaction (counted by a store subclass; an `executemany` is pipelined and counts once), and
the transactions per request (lease takes and top-ups, grows ahead of need and batches of the
background writer, give-backs, reservations of the direct path), and how many lease top-ups a
request waited for against how many the writer made ahead of need. Without leases:
two per request (reserve, settle: one server-side function call each). After the run it checks the counters: spend
equals the sum of the events, nothing reserved or leased is left.

PostgreSQL comes from --pg or env COSTPLANE_TEST_PG; the benchmark creates and drops a schema.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from costplane.attribution.context import Context
from costplane.ledger import open_store
from costplane.ledger.base import SqlStore
from costplane.ledger.leases import LeasedLedger, LeaseSettings
from costplane.ledger.postgres import PostgresStore
from costplane.ledger.queries import Row, Tx
from costplane.ledger.types import BudgetClaim, CostEvent, DecisionRecord, Reservation

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
AMOUNT = 2_000_000  # worst-case bound of one call (0.002 USD)
COST = 1_200_000  # what it actually costs
LIMIT = 10**15  # never refuses


class _CountingTx(Tx):
    """Counts the statements a transaction sends (each one round trip; `many` is pipelined: one)."""

    def __init__(self, inner: Tx, counter: list[int]) -> None:
        self._inner, self._counter = inner, counter

    def exec(self, sql: str, params: Any = ()) -> int:
        self._counter[0] += 1
        return self._inner.exec(sql, params)

    def many(self, sql: str, rows: Any) -> None:
        self._counter[0] += 1
        self._inner.many(sql, rows)

    def all(self, sql: str, params: Any = ()) -> list[Row]:
        self._counter[0] += 1
        return self._inner.all(sql, params)


class CountingPostgresStore(PostgresStore):
    """PostgreSQL store that counts its round trips: statements, plus BEGIN and COMMIT of every
    multi-statement transaction."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.trips = [0]

    def _run(self, body: Any, *, single: bool = False) -> Any:
        self.trips[0] += 0 if single else 2
        return super()._run(lambda tx: body(_CountingTx(tx, self.trips)), single=single)


def _claim() -> BudgetClaim:
    return BudgetClaim(budget="team-hot", partition="", bucket=0, window_start=0, amount_nano=AMOUNT,
                       limit_nano=LIMIT)


def _call(ledger: Any, now: datetime) -> bool:
    rid, did = f"r-{uuid.uuid4().hex}", f"d-{uuid.uuid4().hex}"
    reservation = Reservation(rid, (_claim(),), now, now + timedelta(minutes=10), did)
    decision = DecisionRecord(did, now, "llm.request", "allow", "bench", Context(team="hot"), {"model": "m"},
                              {"effect": "allow"}, budgets=("team-hot",))
    if not ledger.reserve(reservation, decision).ok:
        return False
    ledger.settle(rid, CostEvent(f"e-{uuid.uuid4().hex}", now, Context(team="hot"), "openai", "gpt-4o-mini", COST,
                                 decision_id=did, reservation_id=rid))
    return True


def worker(url: str, leases: bool, journal: str, threads: int, seconds: float, start_at: float) -> dict[str, float]:
    store = CountingPostgresStore(url) if url.startswith("postgresql") else open_store(url)
    assert isinstance(store, SqlStore)
    ledger: Any = store
    if leases:
        ledger = LeasedLedger(store, LeaseSettings(enabled=True, ttl_seconds=30, journal_dir=Path(journal)))
    done = [0]
    lock = threading.Lock()
    time.sleep(max(0.0, start_at - time.time()))
    deadline = time.monotonic() + seconds
    cpu0 = time.process_time()

    def loop() -> None:
        n = 0
        now = datetime.now(UTC)
        while time.monotonic() < deadline:
            n += _call(ledger, now)
        with lock:
            done[0] += n

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    cpu = time.process_time() - cpu0
    transactions = 2.0 * done[0]
    top_ups = refills = 0
    if isinstance(ledger, LeasedLedger):
        ledger.close()
        transactions = ledger.round_trips + 2.0 * ledger.direct
        top_ups, refills = ledger.top_ups, ledger.refills
    trips = float(store.trips[0]) if isinstance(store, CountingPostgresStore) else transactions
    store.close()
    return {"requests": done[0], "round_trips": trips, "transactions": transactions, "cpu_s": cpu,
            "top_ups": top_ups, "refills": refills}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--pg", default=os.environ.get("COSTPLANE_TEST_PG", DEFAULT_PG))
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8, help="threads per process (default 8)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--leases", choices=("on", "off"), default="on")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="costplane-bench-leases-"))
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    if args.store == "postgres":
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        url = f"{args.pg}{'&' if '?' in args.pg else '?'}schema={schema}"
    else:
        url = f"sqlite:///{tmp / 'bench.db'}"
    try:
        store = open_store(url)
        store.migrate()
        ctx = multiprocessing.get_context("spawn")
        start_at = time.time() + 2.0
        with ctx.Pool(args.processes) as pool:
            results = pool.starmap(worker, [(url, args.leases == "on", str(tmp / "journal"), args.threads,
                                             args.seconds, start_at)] * args.processes)
        requests = sum(r["requests"] for r in results)
        trips = sum(r["round_trips"] for r in results)
        transactions = sum(r["transactions"] for r in results)
        cpu = sum(r["cpu_s"] for r in results)
        (state,) = store.claim_states([_claim()])
        events = store.count_events()
        ok = state.spent_nano == events * COST and state.reserved_nano == 0 and events == requests
        print(f"## leases {args.leases}, {args.store}, {args.processes} process(es) x {args.threads} threads, "
              f"{args.seconds:g} s, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
        per = max(requests, 1)
        print(f"requests {requests:,}  aggregate {requests / args.seconds:,.0f} req/s  "
              f"store round trips/request {trips / per:.4f} (transactions/request {transactions / per:.4f})  "
              f"CPU ms/request {1000 * cpu / per:.3f}")
        if args.leases == "on":
            print(f"leases carved or grown on a request's path (the request waited for the store): "
                  f"{sum(r['top_ups'] for r in results):,.0f}; grown ahead by the writers: "
                  f"{sum(r['refills'] for r in results):,.0f}")
        print(f"counters check: {'OK' if ok else 'MISMATCH'} (events {events:,}, spent {state.spent_nano:,} nano, "
              f"reserved {state.reserved_nano:,})")
        store.close()
    finally:
        if args.store == "postgres":
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


if __name__ == "__main__":
    main()
