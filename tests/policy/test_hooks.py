"""Hooks beyond llm.request: per-hook effects, hook-specific actions and their `set` tables."""

from __future__ import annotations

from pathlib import Path

from costplane.attribution.context import Context
from costplane.policy.bundle import load_bundle
from costplane.policy.engine import PolicyEngine

from .helpers import find, issues, write

LIFECYCLE = """
kind: Policy
name: big-gpus-need-approval
on: environment.launch
when: request.gpu_count > 4
effect: require_approval
reason: more than 4 GPUs needs a second pair of eyes
---
kind: Policy
name: experiments-short-ttl
on: environment.launch
when: ctx.tier == "experiment"
effect: mutate
set: {ttl: 2h}
---
kind: Policy
name: idle-suspend
on: environment.runtime
when: request.idle_seconds > 1800
effect: suspend
---
kind: Policy
name: idle-teardown
on: environment.runtime
when: request.idle_seconds > 7200
effect: teardown
---
kind: Policy
name: slo-throttle
on: slo.breach
when: request.slo == "cost-per-ticket"
effect: throttle
set: {max_calls_per_minute: 30}
"""


def test_actions_are_reported_and_the_strongest_wins(tmp_path: Path) -> None:
    write(tmp_path, "lifecycle.yaml", LIFECYCLE)
    engine = PolicyEngine(load_bundle(tmp_path))
    launch = engine.evaluate("environment.launch", Context(tier="experiment"), {"gpu_count": 8})
    assert launch.effect == "require_approval"
    assert [a.name for a in launch.actions] == ["big-gpus-need-approval"]
    assert launch.mutations == {"ttl": 7200}  # mutations ride along with the action
    small = engine.evaluate("environment.launch", Context(tier="experiment"), {"gpu_count": 1})
    assert (small.effect, small.actions) == ("mutate", ())
    runtime = engine.evaluate("environment.runtime", Context(), {"idle_seconds": 12000})
    assert runtime.effect == "teardown"  # teardown is stronger than suspend
    assert [a.name for a in runtime.actions] == ["idle-suspend", "idle-teardown"]
    assert engine.evaluate("environment.runtime", Context(), {"idle_seconds": 2700}).effect == "suspend"
    breach = engine.evaluate("slo.breach", Context(), {"slo": "cost-per-ticket"})
    assert breach.effect == "throttle"
    # policies of one hook never run at another
    assert engine.evaluate("llm.request", Context(tier="experiment"), {"model": "gpt-4o"}).effect == "allow"


def test_effects_and_set_are_checked_per_hook(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", """
kind: Policy
name: approve-llm
on: llm.request
effect: require_approval
---
kind: Policy
name: ttl-typo
on: environment.launch
effect: mutate
set: {ttl: soon}
---
kind: Policy
name: llm-param-on-env
on: environment.extend
effect: mutate
set: {max_tokens: 10}
""")
    found = issues(tmp_path)
    effect = find(found, "effect")
    assert effect.location.line == 4
    assert "'require_approval' is not available at hook 'llm.request'" in effect.message
    assert find(found, "set.ttl").location.line == 10
    assert "ttl" in find(found, "set.max_tokens").message  # names what this hook accepts


def test_a_throttle_only_accepts_what_the_gate_enforces(tmp_path: Path) -> None:
    write(tmp_path, "slo.yaml", """
kind: Policy
name: throttle-concurrency
on: slo.breach
effect: throttle
set: {max_concurrent: 4}
""")
    problem = find(issues(tmp_path), "set.max_concurrent")
    assert "allowed: max_calls_per_minute" in problem.message
