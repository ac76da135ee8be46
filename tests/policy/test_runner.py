"""The PolicyTest runner and the example bundle."""

from __future__ import annotations

from pathlib import Path

from costplane.policy.bundle import load_bundle
from costplane.policy.testing import run_tests

from .helpers import write

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bundle"

POLICIES = """
kind: Policy
name: small
on: llm.request
when: request.model == "gpt-4o" && request.input_tokens < 4000
effect: route
set: {model: gpt-4o-mini}
reason: short prompts use the small model
---
kind: Policy
name: cap
on: llm.request
effect: mutate
set: {max_tokens: 1024}
---
kind: Budget
name: everything
max_calls: 10
"""


def test_passing_and_failing_cases(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", POLICIES)
    write(
        tmp_path,
        "t.yaml",
        """
        kind: PolicyTest
        name: passes
        request: {model: gpt-4o, input_tokens: 10}
        expect:
          effect: route
          model: gpt-4o-mini
          max_tokens: 1024
          policies: [cap, small]
          reason_contains: small model
          budgets: [everything]
          notify: []
        ---
        kind: PolicyTest
        name: fails
        request: {model: gpt-4o, input_tokens: 9000, max_tokens: 100}
        expect:
          effect: route
          model: gpt-4o-mini
          max_tokens: 1024
          policies: [small]
          reason_contains: nothing like this
          budgets: []
        """,
    )
    results = run_tests(load_bundle(tmp_path))
    assert [(r.name, r.passed) for r in results] == [("passes", True), ("fails", False)]
    assert results[0].failures == []
    assert str(results[1].location) == f"{tmp_path / 't.yaml'}:13"
    assert results[1].failures == [
        "expected effect 'route', got 'mutate'",
        "expected model 'gpt-4o-mini', got 'gpt-4o'",
        "expected max_tokens 1024, got 100",
        "expected policies [small], got [cap] (missing [small]; unexpected [cap])",
        "expected budgets [], got [everything] (unexpected [everything])",
        "expected a reason containing 'nothing like this', got []",
    ]


def test_deny_failure_explains_the_denial(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", "kind: Policy\nname: never\non: llm.request\neffect: deny\nreason: never\n")
    write(tmp_path, "t.yaml", "kind: PolicyTest\nname: t\nexpect: {effect: allow}\n")
    (result,) = run_tests(load_bundle(tmp_path))
    assert result.failures == ["expected effect 'allow', got 'deny' (never)"]


def test_example_bundle_validates_and_its_tests_pass() -> None:
    bundle = load_bundle(EXAMPLE)
    assert {p.name for p in bundle.policies} >= {
        "experiments-use-small-models",
        "experiments-no-reasoning-models",
        "experiments-cap-output",
        "large-prompt-notice",
    }
    assert {b.name for b in bundle.budgets} == {
        "team-ml-monthly",
        "team-support-daily",
        "team-growth-daily",
        "ml-agents-hourly",
        "agent-run-limits",
        "per-key-concurrency",
    }
    ml = bundle.budget("team-ml-monthly")
    assert ml is not None and ml.amount_nano == 500_000_000_000 and ml.window.timezone == "Europe/Berlin"
    assert ml.alerts == (50, 80, 100) and ml.hard
    growth = bundle.budget("team-growth-daily")
    assert growth is not None and growth.amount_nano == 50_000_000 and growth.on_exceed == "deny"
    hourly = bundle.budget("ml-agents-hourly")
    assert hourly is not None and (hourly.on_exceed, hourly.route_to) == ("route", "gpt-4o-mini")
    runs = bundle.budget("agent-run-limits")
    assert runs is not None and (runs.per, runs.amount_nano, runs.max_calls) == (("run",), 500_000_000, 40)
    keys = bundle.budget("per-key-concurrency")
    assert keys is not None and (keys.per, keys.max_concurrent) == (("key",), 32)
    results = run_tests(bundle)
    assert len(results) >= 10
    assert [r.failures for r in results if not r.passed] == []
    tested = {name for r in results if r.decision for name in r.decision.policy_names}
    assert tested == {p.name for p in bundle.policies}  # every policy is exercised by a test
