"""Every hook's decision record holds the exact evaluated input (with its format version) and enough to
rebuild the request: deciding the rebuilt request again, under the same bundle, gives the same effect."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from costplane.attribution.context import Context
from costplane.config import parse_config
from costplane.core.bundle_state import ActiveBundle
from costplane.core.decision import DecisionCore, admit_arguments
from costplane.core.environments import EnvironmentCore, ExtendRequest, LaunchRequest
from costplane.core.requests import Admission, Denial, LlmRequest
from costplane.core.slo import SloMonitor
from costplane.iac import check_plan, load_plan
from costplane.iac.check import HOOK as IAC
from costplane.ledger.contracts import BudgetLedger
from costplane.ledger.envtypes import EnvironmentRecord
from costplane.ledger.memory import MemoryLedger
from costplane.ledger.open import open_store
from costplane.ledger.store import Store
from costplane.ledger.types import CostEvent, DecisionRecord
from costplane.lifecycle.drivers import DriverSet
from costplane.policy.bundle import load_bundle
from costplane.policy.engine import PolicyEngine
from costplane.policy.hookschema import DECISION_INPUT_VERSION, SCHEMAS
from costplane.pricing.catalog import Catalog
from costplane.pricing.skus import SkuCatalog

BUNDLE = """
kind: Policy
name: cap-experiments
on: llm.request
when: ctx.tier == "experiment"
effect: mutate
set: {max_tokens: 64}
---
kind: Policy
name: no-big-prompts
on: llm.request
when: request.input_tokens > 5000
effect: deny
reason: prompts over 5000 tokens are refused
---
kind: Budget
name: team-a
scope: ctx.team == "a"
amount: 0.01 USD
window: lifetime
enforcement: hard
---
kind: Blueprint
name: box
resources: [{kind: instance, sku: aws/m6i.large}]
driver: {type: noop}
lifecycle: {ttl: 1h, max_ttl: 3h, extend_by: 30m}
---
kind: Policy
name: short-extensions
on: environment.extend
when: request.extend_seconds > 3600
effect: deny
reason: extend by an hour at most
---
kind: Policy
name: stop-after-two-hours
on: environment.runtime
when: request.accrued_usd > 0.15
effect: teardown
reason: too dear
---
kind: Policy
name: no-p4
on: iac.plan
when: request.instance_type == "p4d.24xlarge"
effect: deny
reason: no p4d in this account
---
kind: SLO
name: support-cost
outcome: ticket_resolved
objective: 0.0005 USD
window: {rolling: 1d}
scope: {agent: support-bot}
---
kind: Policy
name: support-small
on: slo.breach
when: request.slo == "support-cost"
effect: route
set: {model: gpt-4o-mini}
---
kind: Policy
name: dear-spend
on: spend.record
when: request.cost_usd > 0.001
effect: notify
reason: a dear call
"""
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
PLAN = Path(__file__).resolve().parents[2] / "examples" / "iac" / "plan.json"


@dataclass
class World:
    store: Store
    core: DecisionCore
    envs: EnvironmentCore
    active: ActiveBundle
    clock: list[datetime]


@pytest.fixture
def world(store: Store, tmp_path: Path) -> Iterator[World]:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "bundle.yaml").write_text(textwrap.dedent(BUNDLE))
    bundle = load_bundle(tmp_path / "b")
    active = ActiveBundle(bundle.revision, PolicyEngine(bundle), {b.name: b for b in bundle.budgets})
    config = parse_config({"providers": {"oa": {"type": "openai", "base_url": "http://127.0.0.1:1/v1",
                                                "models": ["gpt-*"]}}})
    clock = [NOW]
    core = DecisionCore(config, store, Catalog.load(), lambda: active, clock=lambda: clock[0], store=store)
    envs = EnvironmentCore(store, SkuCatalog.load(), lambda: active, DriverSet(tmp_path / "state"),
                           clock=lambda: clock[0], decider=core.decider)
    yield World(store, core, envs, active, clock)


def _logged(store: Store, decision_id: str | None) -> DecisionRecord:
    assert decision_id is not None
    found = [d for d in store.list_decisions(limit=500) if d.id == decision_id]
    assert len(found) == 1, decision_id
    return found[0]


def _exact(record: DecisionRecord) -> dict[str, Any]:
    """The logged input: versioned, its facts declared by the hook's schema, JSON as stored."""
    assert record.input["version"] == DECISION_INPUT_VERSION
    facts: dict[str, Any] = record.input["request"]
    declared = set(SCHEMAS[record.hook].names) if record.hook in SCHEMAS else set(facts)
    assert set(facts) <= declared | {"gpu_util", "cpu_util"}, set(facts) - declared
    assert json.loads(json.dumps(record.input)) == record.input
    return facts


def _effect(outcome: Admission | Denial) -> tuple[str, str]:
    return ("deny", outcome.code) if isinstance(outcome, Denial) else (outcome.effect, outcome.model)


@pytest.mark.parametrize("ctx, request_", [
    (Context(team="b", tier="experiment"), LlmRequest("openai", "chat.completions", "gpt-4o", 120, 90, 500,
                                                      params={"temperature": 0.2}, loop_hash="h1")),
    (Context(team="b"), LlmRequest("openai", "chat.completions", "gpt-4o-mini", 9000, 8000, None)),
    (Context(team="a"), LlmRequest("openai", "chat.completions", "gpt-4o", 100, 50, 100_000, stream=True)),
])
def test_llm_requests_rebuild_and_decide_the_same(world: World, ctx: Context, request_: LlmRequest) -> None:
    first = world.core.admit(ctx, request_, tool_uses={})
    record = _logged(world.store, first.decision_id)
    facts = _exact(record)
    assert facts["model"] == request_.model and facts["input_tokens"] == request_.input_estimate
    rebuilt, uses, uncapped = admit_arguments(record.input)
    assert rebuilt == request_ and uses == {} and uncapped == {}
    again = world.core.redecide(record.context, record.input)
    assert _effect(again) == _effect(first) and record.effect == ("deny" if isinstance(first, Denial)
                                                                  else first.effect)


def test_a_direct_call_is_admitted_and_redecided_as_direct(world: World) -> None:
    request_ = LlmRequest("anthropic", "messages", "claude-sonnet-4-5", 200, 150, None)
    first = world.core.admit_direct(Context(team="b"), request_)
    assert isinstance(first, Admission) and first.provider.pricing_provider == "anthropic"
    assert first.max_tokens == world.core.config.gateway.default_max_tokens
    record = _logged(world.store, first.decision_id)
    assert record.input["direct"] is True and _exact(record)["provider"] == "anthropic"
    assert _effect(world.core.redecide(record.context, record.input)) == _effect(first)
    # the gateway has no anthropic provider: the same request through it is not served
    assert _effect(world.core.admit(Context(team="b"), request_)) == ("deny", "model_not_found")


def test_environment_launch_and_extend_rebuild_and_decide_the_same(world: World) -> None:
    ctx = Context(team="b", owner="dev")
    env = world.envs.launch(ctx, "box", {}, ttl=3600)
    assert isinstance(env, EnvironmentRecord)
    launch = _logged(world.store, env.decision_id)
    assert _exact(launch)["projected_nano"] == env.projected_nano and launch.effect == "allow"
    asked = LaunchRequest.from_decision_input(launch.input)
    assert asked == LaunchRequest("box", {}, 3600)
    again = world.envs.launch_request(launch.context, asked)
    assert isinstance(again, EnvironmentRecord) and again.projected_nano == env.projected_nano
    refused = world.envs.launch(ctx, "box", {}, ttl=5 * 3600)  # past max_ttl: refused before the policies
    assert isinstance(refused, Denial) and refused.code == "ttl_exceeds_max"
    assert LaunchRequest.from_decision_input(_logged(world.store, refused.decision_id).input).ttl == 5 * 3600

    denied = world.envs.extend(env.id, ctx, 7200)
    assert isinstance(denied, Denial) and denied.code == "policy_denied"
    extend = _logged(world.store, denied.decision_id)
    assert _exact(extend)["extend_seconds"] == 7200
    rebuilt = ExtendRequest.from_decision_input(extend.input)
    assert rebuilt == ExtendRequest(env.id, 7200)
    redo = world.envs.extend(rebuilt.environment_id, ctx, rebuilt.by)
    assert isinstance(redo, Denial) and redo.code == denied.code


def test_environment_runtime_goes_through_the_decider(world: World) -> None:
    env = world.envs.launch(Context(team="b", owner="dev"), "box", {}, ttl=3600)
    assert isinstance(env, EnvironmentRecord) and env.started_at is not None
    assert world.envs.runtime(env, NOW) is None  # nothing accrued yet
    world.clock[0] = NOW + timedelta(minutes=100)  # 100 minutes of m6i.large: 0.16 USD > 0.15
    world.envs.accrue(env, world.clock[0])
    fresh = world.store.get_environment(env.id)
    assert fresh is not None
    verdict = world.envs.runtime(fresh, world.clock[0])
    assert verdict is not None and verdict.action == "teardown" and verdict.policies == ("stop-after-two-hours",)
    done = world.envs.teardown(env.id, verdict.reason, hook="environment.runtime", verdict=verdict)
    assert isinstance(done, EnvironmentRecord) and done.state == "torn_down"
    record = _logged(world.store, verdict.evaluation.decision_id)
    assert record.hook == "environment.runtime" and record.effect == "teardown"
    facts = _exact(record)
    assert facts["accrued_usd"] > 0.15 and record.input["environment_id"] == env.id
    policy, _ = world.active.engine.decide("environment.runtime", record.context, facts)
    assert policy.effect == record.effect


def test_iac_plan_and_slo_breach_and_spend_record_decisions_redecide(world: World) -> None:
    report = check_plan(load_plan(PLAN), SkuCatalog.load(), context={"team": "b"}, decider=world.core.decider)
    trainer = next(v for v in report.verdicts if v.priced.resource.address == "aws_instance.trainer")
    web = next(v for v in report.verdicts if v.priced.resource.address == "aws_instance.web")
    assert trainer.denied and trainer.policies == ("no-p4",) and not web.denied
    for verdict in (trainer, web):
        record = _logged(world.store, verdict.decision_id)
        assert record.hook == IAC and record.input["address"] == verdict.priced.resource.address
        policy, _ = world.active.engine.decide(IAC, record.context, _exact(record))
        assert ("deny" if policy.effect == "deny" else "allow") == ("deny" if record.effect == "deny" else "allow")

    world.store.record_nodes([], [CostEvent("ev-slo", NOW, Context(agent="support-bot"), "openai", "gpt-4o",
                                            2_000_000)])
    monitor = SloMonitor(world.store, lambda: world.active.engine, world.core.notifier, clock=lambda: NOW,
                         decider=world.core.decider)
    (state,) = monitor.evaluate()
    assert state.breached
    (breach,) = [d for d in world.store.list_decisions(limit=500) if d.hook == "slo.breach"]
    policy = world.active.engine.evaluate("slo.breach", breach.context, _exact(breach))
    assert policy.model == breach.result["actions"][0]["model"] == "gpt-4o-mini"

    events = [CostEvent(f"ev-{i}", NOW, Context(team="b"), "openai", "gpt-4o", cost) for i, cost in
              enumerate((500_000, 2_000_000))]
    recorded = world.core.record_spend(events, "sdk")
    (observed,) = [_logged(world.store, d) for d in recorded.decisions]
    assert observed.result["event_ids"] == ["ev-0", "ev-1"] and observed.input["source"] == "sdk"
    notified = [world.active.engine.evaluate("spend.record", observed.context, facts).notify
                for facts in observed.input["requests"]]
    assert [bool(n) for n in notified] == [False, True] and "dear-spend" in observed.policies


def test_replay_decides_on_a_fresh_ledger_with_the_recorded_clock(world: World, tmp_path: Path) -> None:
    """The decider takes any BudgetLedger: a second core over a fresh ledger (in memory, or a store), at
    each decision's recorded time, deciding the logged inputs in order, gives the live effects back
    (team-a holds 0.01 USD)."""
    live: list[tuple[str, str]] = []
    for minute in range(4):
        world.clock[0] = NOW + timedelta(minutes=minute)
        got = world.core.admit(Context(team="a"), LlmRequest("openai", "chat.completions", "gpt-4o", 100, 50, 300))
        live.append(_effect(got))
    assert live[-1] == ("deny", "budget_exceeded") and live[0][0] != "deny"
    logged = sorted((d for d in world.store.list_decisions(limit=500) if d.hook == "llm.request"),
                    key=lambda d: d.ts)
    stored = open_store(f"sqlite:///{tmp_path}/replay.db")
    stored.migrate()
    assert _replay(world, MemoryLedger(), logged) == live
    assert _replay(world, stored, logged) == live


def _replay(world: World, ledger: BudgetLedger, logged: list[DecisionRecord]) -> list[tuple[str, str]]:
    when = [NOW]
    replay = DecisionCore(world.core.config, ledger, Catalog.load(), lambda: world.active, clock=lambda: when[0])
    replayed = []
    for record in logged:
        when[0] = record.ts
        replayed.append(_effect(replay.redecide(record.context, record.input)))
    return replayed
