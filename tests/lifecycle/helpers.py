"""A small environment world for lifecycle tests: a bundle with short-lived blueprints on a real store."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from costplane.core.bundle_state import ActiveBundle
from costplane.core.environments import EnvironmentCore
from costplane.ledger.sqlite import SqliteStore
from costplane.ledger.store import Store
from costplane.lifecycle.drivers import DriverSet
from costplane.policy.bundle import load_bundle
from costplane.policy.engine import PolicyEngine
from costplane.pricing.skus import SkuCatalog

BUNDLE = """
kind: Blueprint
name: gpu-box
inputs:
  gpu_type: {type: string, allowed: [T4, L4, A100-80GB], default: L4}
  gpus: {type: int, min: 1, max: 8, default: 1}
resources: [{kind: gpu, sku: "aws/gpu/{gpu_type}", count: "{gpus}"}]
driver: {type: process, command: [sleep, "600"], grace: 1s}
lifecycle: {ttl: 2s, max_ttl: 4s, extend_by: 1s, notice: 1s, accrue_every: 1s,
            idle: {metric: gpu_util, below: 5, for: 1s, action: teardown}}
require: [owner]
---
kind: Blueprint
name: noop-box
resources: [{kind: instance, sku: aws/m6i.large}]
driver: {type: noop}
lifecycle: {ttl: 1h, max_ttl: 2h, accrue_every: 1s}
---
kind: Policy
name: no-a100-in-experiment
on: environment.launch
when: ctx.tier == "experiment" && request.gpu_type == "A100-80GB"
effect: deny
reason: the experiment tier may not use A100 GPUs
---
kind: Budget
name: team-small
scope: ctx.team == "small"
amount: 1 USD
window: lifetime
"""


def make_core(tmp: Path, bundle_text: str = BUNDLE, store: Store | None = None) -> EnvironmentCore:
    root = tmp / "bundle"
    root.mkdir(exist_ok=True)
    (root / "all.yaml").write_text(bundle_text)
    bundle = load_bundle(root)
    active = ActiveBundle(bundle.revision, PolicyEngine(bundle), {b.name: b for b in bundle.budgets})
    store = store or SqliteStore(tmp / "db.sqlite")
    store.migrate()
    return EnvironmentCore(store, SkuCatalog.load(), lambda: active, DriverSet(tmp / "state"))


def wait_until(check: Callable[[], bool], timeout: float, step: Callable[[], object] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if step is not None:
            step()
        if check():
            return True
        time.sleep(0.05)
    return False
