"""Helpers of the replay tests: row counts of every table of a store URL (SQLite or PostgreSQL), and a
seeded environments history recorded through the real EnvironmentCore."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg

from costplane.attribution.context import Context
from costplane.core.bundle_state import ActiveBundle
from costplane.core.environments import EnvironmentCore
from costplane.core.requests import Denial
from costplane.ledger.envtypes import EnvironmentRecord
from costplane.ledger.store import Store
from costplane.lifecycle.drivers import DriverSet
from costplane.policy.bundle import load_bundle
from costplane.policy.engine import PolicyEngine
from costplane.pricing.skus import SkuCatalog


def table_counts(url: str) -> dict[str, int]:
    """{table: rows} for every table of the store at `url` (its schema, on PostgreSQL)."""
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(url.split("?", 1)[0].removeprefix("sqlite:///"))
        try:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {n: int(conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0]) for n in sorted(names)}
        finally:
            conn.close()
    schema = parse_qs(urlsplit(url).query)["schema"][0]
    base = url.split("?", 1)[0]
    with psycopg.connect(base) as pg:
        names = [r[0] for r in pg.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
                                          " AND table_type = 'BASE TABLE'", (schema,))]
        counts = {}
        for n in sorted(names):
            row = pg.execute(f'SELECT COUNT(*) FROM "{schema}"."{n}"').fetchone()
            counts[n] = int(row[0]) if row else 0
        return counts


# -- a seeded environments history, recorded through the real EnvironmentCore ---------------------

RECORDED_BUNDLE = """
kind: Blueprint
name: gpu-box
inputs:
  gpu_type: {type: string, allowed: [L4, A100-80GB], default: L4}
  gpus: {type: int, min: 1, max: 8, default: 1}
resources: [{kind: gpu, sku: "aws/gpu/{gpu_type}", count: "{gpus}"}]
driver: {type: noop}
lifecycle: {ttl: 4h, max_ttl: 12h, extend_by: 2h}
require: [owner]
---
kind: Blueprint
name: cpu-box
resources: [{kind: instance, sku: aws/m6i.large}]
driver: {type: noop}
lifecycle: {ttl: 2h, max_ttl: 8h}
"""


@dataclass
class Seeded:
    """What `seed_environments` recorded: environment ids by role, the window and the denial's id."""

    start: datetime
    end: datetime
    a100: str  # gpu-box, 2 x A100-80GB, ml/alice, 3 h (accrued twice)
    l4: str  # gpu-box, 1 x L4, ml/bob, ttl 4 h, extended by 2 h at 3 h, torn down at 5.5 h
    cpu: str  # cpu-box, web/carol, 1 h
    denied: str  # decision id: gpu-box launched without an owner


def seed_environments(store: Store, tmp: Path, t0: datetime) -> Seeded:
    """Launch, accrue, extend and tear down environments at controlled times (noop driver)."""
    root = tmp / "recorded-bundle"
    root.mkdir(exist_ok=True)
    (root / "all.yaml").write_text(RECORDED_BUNDLE)
    bundle = load_bundle(root)
    active = ActiveBundle(bundle.revision, PolicyEngine(bundle), {b.name: b for b in bundle.budgets})
    now = [t0]
    core = EnvironmentCore(store, SkuCatalog.load(), lambda: active, DriverSet(tmp / "state"), clock=lambda: now[0])

    def at(hours: float) -> None:
        now[0] = t0 + timedelta(hours=hours)

    def launched(result: EnvironmentRecord | Denial) -> EnvironmentRecord:
        assert isinstance(result, EnvironmentRecord), result
        return result

    ml = {"org": "acme", "team": "ml", "tier": "production"}
    a100 = launched(core.launch(Context(owner="alice", **ml), "gpu-box", {"gpu_type": "A100-80GB", "gpus": "2"},
                                ttl=4 * 3600))
    at(1)
    core.accrue(store.get_environment(a100.id) or a100, now[0])
    at(3)
    assert isinstance(core.teardown(a100.id, "done"), EnvironmentRecord)
    at(24)
    l4 = launched(core.launch(Context(owner="bob", **ml), "gpu-box", {"gpu_type": "L4"}))
    at(27)
    assert isinstance(core.extend(l4.id, Context(owner="bob", **ml), 7200), EnvironmentRecord)
    at(29.5)
    assert isinstance(core.teardown(l4.id, "done"), EnvironmentRecord)
    at(48)
    cpu = launched(core.launch(Context(org="acme", team="web", owner="carol"), "cpu-box", {}))
    at(49)
    assert isinstance(core.teardown(cpu.id, "done"), EnvironmentRecord)
    at(72)
    denial = core.launch(Context(**ml), "gpu-box", {})
    assert isinstance(denial, Denial) and denial.decision_id is not None
    return Seeded(t0 - timedelta(hours=1), t0 + timedelta(hours=80), a100.id, l4.id, cpu.id, denial.decision_id)


def environment_cost(store: Store, env_id: str) -> int:
    """The sum of the environment's accrued cost events (read with the ordinary list query)."""
    env = store.get_environment(env_id)
    assert env is not None
    return sum(e.cost_nano for e in store.list_events(limit=10**6)
               if e.kind == "environment" and e.decision_id == env.decision_id)
