"""Policy replay of environment launches goes through the environment adapter itself: a launch recorded
live and replayed under the unchanged bundle gets back its live decision exactly — effect, policies,
budgets, status, refusal code and result, and the evaluated input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from costplane.attribution.context import Context
from costplane.core.bundle_state import ActiveBundle
from costplane.core.environments import EnvironmentCore
from costplane.core.requests import Denial
from costplane.ledger.envtypes import EnvironmentRecord, EnvState
from costplane.ledger.store import Store
from costplane.ledger.types import DecisionRecord
from costplane.lifecycle.drivers import DriverSet
from costplane.optimize.replay import Replayer, ReplayReport
from costplane.optimize.replay_envs import load_launches
from costplane.optimize.synthetic import synthetic_config
from costplane.policy.bundle import load_bundle
from costplane.policy.engine import PolicyEngine
from costplane.pricing.catalog import Catalog
from costplane.pricing.skus import SkuCatalog

from .replay_helpers import RECORDED_BUNDLE

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
SKUS = SkuCatalog.load()
BUNDLE = RECORDED_BUNDLE + """---
kind: Budget
name: ml-envs
scope: ctx.team == "ml"
amount: 500 USD
window: lifetime
---
kind: Budget
name: web-envs
scope: ctx.team == "web"
amount: 0.01 USD
window: lifetime
---
kind: Policy
name: a100-two-hours
on: environment.launch
when: request.gpu_type == "A100-80GB"
effect: mutate
set: {ttl: 2h}
"""


def _without_ids(record: DecisionRecord) -> tuple[Any, ...]:
    result = {k: v for k, v in record.result.items() if k not in ("environment_id", "reservation_id")}
    return (record.hook, record.effect, record.policies, record.budgets, record.status_code, result.get("code"),
            result, record.input, record.reason.rsplit(" (decision ", 1)[0], record.context, record.ts)


def test_a_recorded_launch_replayed_under_its_bundle_gets_its_live_decision_back(store: Store,
                                                                                tmp_path: Path) -> None:
    root = tmp_path / "bundle"
    root.mkdir()
    (root / "all.yaml").write_text(BUNDLE)
    bundle = load_bundle(root)
    active = ActiveBundle(bundle.revision, PolicyEngine(bundle), {b.name: b for b in bundle.budgets})
    now = [T0]
    core = EnvironmentCore(store, SKUS, lambda: active, DriverSet(tmp_path / "state"), clock=lambda: now[0])
    ml = {"org": "acme", "team": "ml"}
    a100 = core.launch(Context(owner="alice", **ml), "gpu-box", {"gpu_type": "A100-80GB", "gpus": 2}, ttl=4 * 3600)
    now[0] = T0 + timedelta(hours=1)
    l4 = core.launch(Context(owner="bob", **ml), "gpu-box", {})
    now[0] = T0 + timedelta(hours=2)
    refused = core.launch(Context(org="acme", team="web", owner="carol"), "cpu-box", {})
    untagged = core.launch(Context(**ml), "gpu-box", {})
    assert isinstance(a100, EnvironmentRecord) and isinstance(l4, EnvironmentRecord)
    assert isinstance(refused, Denial) and refused.code == "budget_exceeded"
    assert isinstance(untagged, Denial) and untagged.code == "missing_tags"
    for env in (a100, l4):
        assert isinstance(core.teardown(env.id, "done"), EnvironmentRecord)

    report = ReplayReport(bundle.revision, T0 - timedelta(hours=1), T0 + timedelta(hours=3))
    replayer = Replayer(bundle, synthetic_config(), Catalog.load(), report)
    launches = load_launches(store, report.since, report.until)
    envs = replayer.launches(SKUS)
    pairs: list[tuple[DecisionRecord, DecisionRecord | None]] = []
    try:
        for launch in launches:
            assert launch.decision is not None
            replayer.advance(launch.ts)
            pairs.append((launch.decision, envs.run(launch)))
    finally:
        envs.close()
    logged = {d.id: d for d in store.list_decisions(limit=100)}  # the log's full records (policies, budgets)
    pairs = [(logged[live.id], replayed) for live, replayed in pairs]
    codes = sorted(str(live.result.get("code", live.effect)) for live, _ in pairs)
    assert codes == ["allow", "budget_exceeded", "missing_tags", "mutate"]
    assert {live.result.get("budget") for live, _ in pairs} == {None, "web-envs"}
    assert sorted(b for live, _ in pairs for b in live.budgets) == ["ml-envs", "ml-envs", "web-envs"]
    assert sorted(p for live, _ in pairs for p in live.policies) == ["a100-two-hours"]
    for live, replayed in pairs:
        assert replayed is not None and replayed.id != live.id
        assert _without_ids(replayed) == _without_ids(live)
    assert (report.launches.launches, report.launches.ran, report.launches.changes) == (4, 2, [])
    assert report.launches.replayed_nano == report.launches.recorded_nano > 0


def test_a_launch_that_ran_after_approval_is_approved_again_through_the_adapter(store: Store,
                                                                               tmp_path: Path) -> None:
    root = tmp_path / "bundle"
    root.mkdir()
    (root / "all.yaml").write_text(RECORDED_BUNDLE + """---
kind: Policy
name: web-needs-approval
on: environment.launch
when: ctx.team == "web"
effect: require_approval
reason: web launches are approved by finance
""")
    bundle = load_bundle(root)
    active = ActiveBundle(bundle.revision, PolicyEngine(bundle), {b.name: b for b in bundle.budgets})
    now = [T0]
    core = EnvironmentCore(store, SKUS, lambda: active, DriverSet(tmp_path / "state"), clock=lambda: now[0])
    web = Context(org="acme", team="web", owner="carol")
    pending = core.launch(web, "cpu-box", {})
    assert isinstance(pending, EnvironmentRecord) and pending.state == EnvState.PENDING
    now[0] = T0 + timedelta(minutes=20)
    assert isinstance(core.approve(pending.id, Context(owner="finance")), EnvironmentRecord)
    now[0] = T0 + timedelta(hours=1, minutes=20)
    assert isinstance(core.teardown(pending.id, "done"), EnvironmentRecord)

    report = ReplayReport(bundle.revision, T0 - timedelta(hours=1), T0 + timedelta(hours=3))
    replayer = Replayer(bundle, synthetic_config(), Catalog.load(), report)
    (launch,) = load_launches(store, report.since, report.until)
    envs = replayer.launches(SKUS)
    try:
        replayer.advance(launch.ts)
        replayed = envs.run(launch)
    finally:
        envs.close()
    live = {d.id: d for d in store.list_decisions(limit=100)}[pending.decision_id]
    assert replayed is not None and live.effect == "require_approval"
    assert _without_ids(replayed) == _without_ids(live)
    # approved again, it runs as it ran: the hour it cost, nothing changed
    assert (report.launches.ran, report.launches.changes, report.launches.at_stake_nano) == (1, [], 0)
    assert report.launches.replayed_nano == report.launches.recorded_nano > 0
