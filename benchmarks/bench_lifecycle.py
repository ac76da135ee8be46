"""Lifecycle benchmark: TTL enforcement lag with many active environments, and memory per environment.

    .venv/bin/python benchmarks/bench_lifecycle.py                 # 10,000 environments, SQLite
    .venv/bin/python benchmarks/bench_lifecycle.py --n 2000 --spread 5

Environments use the `noop` driver (nothing is started: the figure is the scheduler's and
the store's cost, not a driver's). All N are launched through `EnvironmentCore.launch`
(validation, pricing, policies, an atomic budget reservation, the store row) with a 1 h TTL;
then their expiries are spread evenly over `--spread` seconds starting 5 s later
(`update_environment(expires_at, next_action_at)`), and the server's scheduler runs as in
`costplane serve` (a tick every 0.5 s, teardowns on its thread pool). Lag = time of the
torn_down transition − expires_at, for every environment. Memory per environment = the
process's RSS growth over the launch of all N, divided by N (the store file size / N is
printed as well).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from costplane.attribution.context import Context
from costplane.core.bundle_state import ActiveBundle
from costplane.core.environments import EnvironmentCore
from costplane.ledger.envtypes import EnvironmentRecord, EnvState
from costplane.ledger.sqlite import SqliteStore
from costplane.lifecycle.drivers import DriverSet
from costplane.lifecycle.scheduler import Scheduler
from costplane.policy.bundle import load_bundle
from costplane.policy.engine import PolicyEngine
from costplane.pricing.skus import SkuCatalog

BUNDLE = """
kind: Blueprint
name: bench
resources: [{kind: gpu, sku: aws/gpu/L4}]
driver: {type: noop}
lifecycle: {ttl: 1h, max_ttl: 2h, notice: 1s, accrue_every: 60s}
require: [owner]
---
kind: Policy
name: experiment-no-a100
on: environment.launch
when: ctx.tier == "experiment" && request.gpu_type == "A100-80GB"
effect: deny
reason: no A100 in experiment
---
kind: Budget
name: team-ml
scope: ctx.team == "ml"
amount: 1000000 USD
window: lifetime
"""


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="active environments")
    parser.add_argument("--spread", type=float, default=10.0, help="seconds over which the expiries are spread")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "bundle")
        root.mkdir()
        (root / "bench.yaml").write_text(BUNDLE)
        bundle = load_bundle(root)
        active = ActiveBundle(bundle.revision, PolicyEngine(bundle), {b.name: b for b in bundle.budgets})
        store = SqliteStore(Path(tmp, "bench.db"))
        store.migrate()
        core = EnvironmentCore(store, SkuCatalog.load(), lambda: active, DriverSet(Path(tmp, "state")))
        ctx = Context(team="ml", owner="bench", tier="production")
        rss0, started = _rss_kib(), time.perf_counter()
        ids = []
        for _ in range(args.n):
            env = core.launch(ctx, "bench", {})
            assert isinstance(env, EnvironmentRecord), env
            ids.append(env.id)
        launch_s = time.perf_counter() - started
        rss_per_env = (_rss_kib() - rss0) * 1024 / args.n
        db_per_env = Path(tmp, "bench.db").stat().st_size / args.n
        first = core.clock() + timedelta(seconds=5)
        expiry = {}
        for i, env_id in enumerate(ids):
            at = first + timedelta(seconds=args.spread * i / args.n)
            store.update_environment(env_id, {"expires_at": at, "next_action_at": at})
            expiry[env_id] = at
        scheduler = Scheduler(core, workers=8, batch=5000)
        stop = threading.Event()
        tick_times: list[float] = []

        def loop() -> None:
            while not stop.is_set():
                t0 = time.perf_counter()
                scheduler.tick()
                tick_times.append(time.perf_counter() - t0)
                stop.wait(max(0.0, 0.5 - (time.perf_counter() - t0)))

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        deadline = time.monotonic() + 5 + args.spread + 120
        while time.monotonic() < deadline and store.list_environments(states=(EnvState.ACTIVE, EnvState.EXPIRING),
                                                                       limit=1):
            time.sleep(0.5)
        stop.set()
        thread.join()
        scheduler.close()
        lags = []
        for env_id in ids:
            ended = next((t.ts for t in store.environment_transitions(env_id) if t.to_state == EnvState.TORN_DOWN),
                         None)
            if ended is None:
                raise SystemExit(f"{env_id} was never torn down")
            lags.append((ended - expiry[env_id]).total_seconds())
        store.close()
    lags.sort()
    q = statistics.quantiles(lags, n=100)
    print(f"environments: {args.n} active (noop driver), expiries spread over {args.spread:g} s")
    print(f"launch: {launch_s:.1f} s total, {launch_s / args.n * 1000:.2f} ms per launch")
    print(f"TTL enforcement lag: p50 {q[49]:.3f} s, p99 {q[98]:.3f} s, max {lags[-1]:.3f} s (min {lags[0]:.3f} s)")
    print(f"scheduler tick: max {max(tick_times):.3f} s over {len(tick_times)} ticks")
    print(f"memory per environment: {rss_per_env:.0f} B RSS (process growth / N); store {db_per_env:.0f} B on disk")
    print("target p99 <= 1 s:", "met" if q[98] <= 1.0 else "NOT met")


if __name__ == "__main__":
    main()
