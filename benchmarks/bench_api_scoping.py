"""Users' API (/api/v1) benchmark: scoped reads on a large ledger, through the route table's handlers.

    .venv/bin/python benchmarks/bench_api_scoping.py                      # SQLite
    .venv/bin/python benchmarks/bench_api_scoping.py --store postgres     # schema bench_<random> in $COSTPLANE_TEST_PG
    .venv/bin/python benchmarks/bench_api_scoping.py --decisions 50000 --runs 1000 --envs 2000

Seeds `--decisions` decisions over 8 teams (1 in 8 also with project px), `--runs` runs (a root
node and one cost event each) and `--envs` environments (rows written directly), then times the
handlers exactly as HTTP calls them (`table.invoke`: role check, parameters, handler; no socket),
for an admin, a developer of one team and a developer scoped to project px:

* decisions: the first page (limit 100) and paging through everything the caller may read with
  limit 1000 (pages, rows, ms per page);
* environments: list (limit 100); runs: list (limit 50) and one run's tree.

Prints the median of `--repeat` calls (ms). Nothing is asserted; figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from costplane.api.credentials import new_user
from costplane.api.errors import ApiError
from costplane.api.principal import Principal
from costplane.api.service import endpoints
from costplane.api.table import Endpoint, invoke
from costplane.app import Application
from costplane.attribution.context import Context
from costplane.config import parse_config
from costplane.ledger.envtypes import EnvironmentRecord
from costplane.ledger.runtypes import RunNode
from costplane.ledger.types import CostEvent, DecisionRecord
from costplane.lifecycle.service import build_core

TEAMS = [f"team{i}" for i in range(8)]
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _seed(app: Application, decisions: int, runs: int, envs: int) -> None:
    store = app.store
    now = datetime.now(UTC)
    started = time.perf_counter()
    for i in range(decisions):
        team = TEAMS[i % len(TEAMS)]
        ctx = Context(team=team, project="px" if i % 8 == 3 else None)
        store.record_decision(DecisionRecord(id=f"d{i:08d}", ts=now - timedelta(milliseconds=(decisions - i) * 10),
                                             hook="llm.request", effect="allow", bundle_revision="r", context=ctx,
                                             input={}, result={}))
    for i in range(runs):
        team = TEAMS[i % len(TEAMS)]
        ctx = Context(team=team, run=f"run{i:06d}", agent=f"{team}-bot")
        ts = now - timedelta(seconds=runs - i)
        store.record_nodes([RunNode(id=f"run{i:06d}", run=f"run{i:06d}", kind="agent", name="a", started_at=ts,
                                    ended_at=ts, status="ok", context=ctx)],
                           [CostEvent(id=f"e{i:08d}", ts=ts, context=ctx, provider="openai", model="gpt-4o-mini",
                                      cost_nano=1000)])
    core = build_core(app)
    template = core.launch(Context(team=TEAMS[0], owner="bench"), "bench", {})
    assert isinstance(template, EnvironmentRecord), template
    for i in range(envs):
        team = TEAMS[i % len(TEAMS)]
        ctx = Context(team=team, owner="bench", project="px" if i % 8 == 3 else None)
        env = EnvironmentRecord(**{**{f: getattr(template, f) for f in template.__dataclass_fields__},
                                   "id": f"env{i:07d}", "context": ctx, "reservation_id": None,
                                   "created_at": now - timedelta(seconds=envs - i)})
        store.create_environment(env)
    print(f"seeded {decisions} decisions, {runs} runs, {envs} environments in {time.perf_counter() - started:.1f} s")


def _time(calls: int, fn: Any) -> float:
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--decisions", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--envs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        if args.store == "postgres":
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            url = f"{PG_URL}?schema={schema}"
        else:
            url = f"sqlite:///{tmp}/bench.db"
        bundle = Path(tmp) / "bundle"
        bundle.mkdir()
        (bundle / "b.yaml").write_text("kind: Blueprint\nname: bench\nresources: [{kind: instance, sku: "
                                       "aws/m6i.large}]\ndriver: {type: noop}\nlifecycle: {ttl: 1h, max_ttl: 2h}\n")
        app = Application(parse_config({"store": url, "bundle": str(bundle)}, base=Path(tmp)))
        try:
            _seed(app, args.decisions, args.runs, args.envs)
            table = {e.operation_id: e for e in endpoints(app, build_core(app))}
            who = {"admin": new_user(app.store, "root", "admin"),
                   "developer (1 team)": new_user(app.store, "dev", "developer", [TEAMS[1]]),
                   "developer (project px)": new_user(app.store, "px", "developer", [], projects=["px"])}

            loop = asyncio.new_event_loop()  # ONE loop, as in the server: its worker threads (and their
            # store connections) are reused across calls

            def call(endpoint: Endpoint, principal: Principal, query: dict[str, str],
                     path: dict[str, str] | None = None) -> dict[str, Any]:
                try:
                    return loop.run_until_complete(invoke(endpoint, principal, query, path or {}))
                except ApiError as exc:  # e.g. the px developer's 404 for team1's run: timed all the same
                    return {"error": exc.status}

            print(f"store {args.store}; median of {args.repeat} calls, ms")
            for label, user in who.items():
                p = Principal(user, "bench")
                first = _time(args.repeat, lambda p=p: call(table["decisions"], p, {"limit": "100"}))
                t0 = time.perf_counter()
                pages = rows = 0
                cursor: str | None = None
                while True:
                    page = call(table["decisions"], p, {"limit": "1000", **({"cursor": cursor} if cursor else {})})
                    pages += 1
                    rows += len(page["decisions"])
                    cursor = page["next_cursor"]
                    if cursor is None:
                        break
                per_page = (time.perf_counter() - t0) * 1000 / pages
                envs = _time(args.repeat, lambda p=p: call(table["environments"], p, {"limit": "100"}))
                runs = _time(args.repeat, lambda p=p: call(table["runs"], p, {"limit": "50"}))
                tree = _time(args.repeat, lambda p=p: call(table["run"], p, {}, {"run_id": "run000001"}))
                print(f"{label:24s} decisions first page {first:7.1f} | paged {rows} rows in {pages} pages, "
                      f"{per_page:6.1f}/page | environments {envs:6.1f} | runs {runs:7.1f} | run tree {tree:5.1f}")
            loop.close()
        finally:
            app.close()
            if args.store == "postgres":
                with psycopg.connect(PG_URL, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


if __name__ == "__main__":
    main()
