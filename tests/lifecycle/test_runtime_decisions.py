"""The scheduler's runtime check goes through the decider (hook environment.runtime): a runtime policy
or an exhausted hard budget tears the environment down, and the teardown is logged as that decision
with the exact facts evaluated."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from costplane.attribution.context import Context
from costplane.core.bundle_state import ActiveBundle
from costplane.core.environments import EnvironmentCore
from costplane.core.spend import record_spend
from costplane.ledger.envtypes import EnvironmentRecord, EnvState
from costplane.ledger.sqlite import SqliteStore
from costplane.ledger.types import CostEvent
from costplane.lifecycle.drivers import DriverSet
from costplane.lifecycle.scheduler import Scheduler
from costplane.policy.bundle import load_bundle
from costplane.policy.engine import PolicyEngine
from costplane.policy.hookschema import DECISION_INPUT_VERSION
from costplane.pricing.skus import SkuCatalog

BUNDLE = """
kind: Blueprint
name: box
resources: [{kind: instance, sku: aws/m6i.large}]
driver: {type: noop}
lifecycle: {ttl: 1h, max_ttl: 2h, accrue_every: 1s}
---
kind: Policy
name: stop-dear-boxes
on: environment.runtime
when: ctx.team == "dear" && request.accrued_usd > 0.0015
effect: teardown
reason: this box already cost too much
---
kind: Budget
name: tight
scope: ctx.team == "tight"
amount: 0.1 USD
window: lifetime
enforcement: hard
"""
START = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _world(tmp_path: Path) -> tuple[EnvironmentCore, Scheduler, list[datetime]]:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "all.yaml").write_text(BUNDLE)
    bundle = load_bundle(tmp_path / "b")
    active = ActiveBundle(bundle.revision, PolicyEngine(bundle), {b.name: b for b in bundle.budgets})
    store = SqliteStore(tmp_path / "db.sqlite")
    store.migrate()
    clock = [START]
    core = EnvironmentCore(store, SkuCatalog.load(), lambda: active, DriverSet(tmp_path / "state"),
                           clock=lambda: clock[0])
    return core, Scheduler(core, workers=1), clock


def _torn_down(core: EnvironmentCore, env_id: str) -> EnvironmentRecord:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        env = core.store.get_environment(env_id)
        if env is not None and env.state == EnvState.TORN_DOWN:
            return env
        time.sleep(0.02)
    raise AssertionError(f"{env_id} was not torn down")


def test_a_runtime_policy_tears_down_and_the_decision_holds_its_facts(tmp_path: Path) -> None:
    core, scheduler, clock = _world(tmp_path)
    try:
        env = core.launch(Context(team="dear", owner="dev"), "box", {})
        assert isinstance(env, EnvironmentRecord)
        clock[0] = START + timedelta(seconds=30)  # 30 s of m6i.large (0.096 USD/h): 0.0008 USD, under the policy
        scheduler.tick()
        assert core.store.get_environment(env.id).state == EnvState.ACTIVE  # type: ignore[union-attr]
        clock[0] = START + timedelta(seconds=90)  # 0.0024 USD accrued: over it
        scheduler.tick()
        done = _torn_down(core, env.id)
        assert done.end_reason == "runtime policy 'stop-dear-boxes': this box already cost too much"
    finally:
        scheduler.close()
    (record,) = [d for d in core.store.list_decisions(limit=100) if d.hook == "environment.runtime"]
    assert (record.effect, record.policies, record.result["action"]) == ("teardown", ("stop-dear-boxes",), "teardown")
    assert record.input["version"] == DECISION_INPUT_VERSION and record.input["environment_id"] == env.id
    facts = record.input["request"]
    assert facts["accrued_usd"] > 0.0015 and facts["environment_id"] == env.id and facts["blueprint"] == "box"
    policy, _ = core.bundle().engine.decide("environment.runtime", record.context, facts)
    assert policy.effect == "teardown"


def test_an_exhausted_hard_budget_tears_down_through_the_decider(tmp_path: Path) -> None:
    core, scheduler, clock = _world(tmp_path)
    try:
        env = core.launch(Context(team="tight", owner="dev"), "box", {})  # holds 0.096 of the 0.1 USD
        assert isinstance(env, EnvironmentRecord)
        spent = CostEvent("ev-elsewhere", START, Context(team="tight"), "aws", "aws/m6i.large", 100_000_000,
                          kind="resource")
        assert core.decider.bundle().budgets["tight"].hard
        record_spend(core.decider, [spent], "resource")  # 0.1 USD spent elsewhere: nothing left
        clock[0] = START + timedelta(seconds=5)
        scheduler.tick()
        done = _torn_down(core, env.id)
        assert done.end_reason is not None and done.end_reason.startswith("budget exhausted")
    finally:
        scheduler.close()
    (record,) = [d for d in core.store.list_decisions(limit=100) if d.hook == "environment.runtime"]
    assert record.effect == "teardown" and record.input["request"]["budget_remaining_usd"] <= 0
