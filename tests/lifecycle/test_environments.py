"""Acceptance of issue 3 on the decision core: launch denials, TTL/idle teardown, accrual, extend, budgets."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from costplane.attribution.context import Context
from costplane.core.requests import Denial
from costplane.ledger.envtypes import EnvironmentRecord, EnvState
from costplane.lifecycle.drivers.process import process_state
from costplane.lifecycle.scheduler import Scheduler
from costplane.pricing.skus import SkuCatalog

from .helpers import BUNDLE, make_core, wait_until

OWNER = Context(team="ml", owner="alice", tier="production")


def _gone(pid: int) -> bool:
    return process_state(pid) in (None, "Z", "X")


def test_launch_denied_by_policy_shows_the_reason(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    result = core.launch(Context(owner="a", tier="experiment"), "gpu-box", {"gpu_type": "A100-80GB"})
    assert isinstance(result, Denial) and result.status == 403 and result.code == "policy_denied"
    assert "experiment tier may not use A100" in result.message and "no-a100-in-experiment" in result.message
    decisions = core.store.list_decisions(effect="deny")
    assert decisions and decisions[0].hook == "environment.launch" and decisions[0].bundle_revision


def test_bad_inputs_name_file_line_and_field(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    result = core.launch(OWNER, "gpu-box", {"gpus": "12", "colour": "red"})
    assert isinstance(result, Denial) and result.code == "invalid_input"
    assert "all.yaml:" in result.message and "inputs.gpus" in result.message and "at most 8" in result.message
    assert "inputs.colour" in result.message
    missing = core.launch(Context(team="ml"), "gpu-box", {})
    assert isinstance(missing, Denial) and missing.code == "missing_tags" and "owner" in missing.message


def test_torn_down_at_ttl_within_2s_and_process_gone(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    env = core.launch(OWNER, "gpu-box", {})
    assert isinstance(env, EnvironmentRecord) and env.state == EnvState.ACTIVE
    pid = int(env.handle["pid"])
    assert not _gone(pid)
    scheduler = Scheduler(core)
    try:
        assert wait_until(lambda: core.store.get_environment(env.id).state == EnvState.TORN_DOWN,  # type: ignore[union-attr]
                          6.0, scheduler.tick)
        done = core.store.get_environment(env.id)
        assert done is not None and done.ended_at is not None and done.end_reason.startswith("ttl")  # type: ignore[union-attr]
        assert (core.clock() - env.expires_at).total_seconds() < 2.0
        assert wait_until(lambda: _gone(pid), 2.0)
        states = [t.to_state for t in core.store.environment_transitions(env.id)]
        assert states[0] == EnvState.ACTIVE and states[-1] == EnvState.TORN_DOWN and EnvState.EXPIRING in states
    finally:
        scheduler.close()


def test_idle_rule_tears_down(tmp_path: Path) -> None:
    core = make_core(tmp_path, BUNDLE.replace("ttl: 2s, max_ttl: 4s", "ttl: 60s, max_ttl: 120s"))
    env = core.launch(OWNER, "gpu-box", {})
    assert isinstance(env, EnvironmentRecord)
    now = core.clock()
    core.store.update_environment(env.id, {"metrics": {"gpu_util": {"value": 1.0, "at": now.isoformat(),
                                                                    "source": "api"}}, "next_action_at": now})
    scheduler = Scheduler(core)
    try:
        assert wait_until(lambda: core.store.get_environment(env.id).state == EnvState.TORN_DOWN,  # type: ignore[union-attr]
                          5.0, scheduler.tick)
        done = core.store.get_environment(env.id)
        assert done is not None and (done.end_reason or "").startswith("idle: gpu_util below 5")
        assert wait_until(lambda: _gone(int(env.handle["pid"])), 2.0)
    finally:
        scheduler.close()


def test_accrued_cost_is_price_times_running_time(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    env = core.launch(OWNER, "noop-box", {})
    assert isinstance(env, EnvironmentRecord) and env.started_at is not None
    scheduler = Scheduler(core)
    try:
        wait_until(lambda: False, 2.5, scheduler.tick)
        ended = core.teardown(env.id, "by hand")
        assert isinstance(ended, EnvironmentRecord) and ended.ended_at is not None
    finally:
        scheduler.close()
    price = SkuCatalog.load().lookup("aws/m6i.large")
    seconds = Decimal(str((ended.ended_at - env.started_at).total_seconds()))
    expected = price.cost_nano(seconds)
    events = [e for e in core.store.list_events() if e.kind == "environment"]
    total = sum(e.cost_nano for e in events)
    assert len(events) >= 2 and ended.accrued_nano == total
    assert abs(total - expected) <= expected * Decimal("0.01")
    reservation = core.store.get_reservation(env.reservation_id or "")
    assert reservation is not None and reservation.status == "settled"


def test_extend_past_max_ttl_is_denied(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    env = core.launch(OWNER, "gpu-box", {})
    assert isinstance(env, EnvironmentRecord)
    try:
        first = core.extend(env.id, OWNER)
        assert isinstance(first, EnvironmentRecord) and first.extensions == 1
        assert core.store.get_reservation(env.reservation_id or "").expires_at > first.expires_at  # type: ignore[union-attr]
        second = core.extend(env.id, OWNER, by=5)
        assert isinstance(second, Denial) and second.code == "max_ttl_exceeded" and "max_ttl" in second.message
    finally:
        core.teardown(env.id, "test over")


def test_projected_cost_over_budget_denied_cheaper_passes(tmp_path: Path) -> None:
    core = make_core(tmp_path, BUNDLE.replace("ttl: 2s, max_ttl: 4s", "ttl: 1h, max_ttl: 4h"))
    small = Context(team="small", owner="carol")
    # 8 × L4 for 1h ≈ 6.44 USD > 1 USD left; 1 × T4 for 1h = 0.526 USD fits
    big = core.launch(small, "gpu-box", {"gpu_type": "L4", "gpus": 8})
    assert isinstance(big, Denial) and big.status == 402 and big.code == "budget_exceeded"
    assert "team-small" in big.message
    cheap = core.launch(small, "gpu-box", {"gpu_type": "T4", "gpus": 1})
    assert isinstance(cheap, EnvironmentRecord), cheap
    core.teardown(cheap.id, "test over")
