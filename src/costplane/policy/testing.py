"""`policy test`: run a bundle's PolicyTest documents through the real engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from costplane.attribution.context import Context, InvalidAttribute
from costplane.policy.bundle import Bundle
from costplane.policy.engine import PolicyEngine
from costplane.policy.types import BudgetSpec, PolicyDecision, PolicyTestCase, SourceLocation

__all__ = ["TestResult", "check_expectations", "run_tests"]


@dataclass(frozen=True, slots=True)
class TestResult:
    __test__ = False  # not a pytest test class

    name: str
    location: SourceLocation
    passed: bool
    failures: list[str]
    decision: PolicyDecision | None = None
    budgets: tuple[str, ...] = ()


def _names(values: Any) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


def _compare_names(what: str, expected: list[str], actual: list[str]) -> str | None:
    if sorted(expected) == sorted(actual):
        return None
    missing = [n for n in expected if n not in actual]
    extra = [n for n in actual if n not in expected]
    detail = []
    if missing:
        detail.append(f"missing {_names(missing)}")
    if extra:
        detail.append(f"unexpected {_names(extra)}")
    return f"expected {what} {_names(expected)}, got {_names(actual)} ({'; '.join(detail)})"


def check_expectations(
    expect: Mapping[str, Any],
    request: Mapping[str, Any],
    decision: PolicyDecision,
    budgets: list[BudgetSpec],
) -> list[str]:
    """Every way the decision differs from what the test case expects."""
    failures: list[str] = []
    if "effect" in expect and expect["effect"] != decision.effect:
        why = f" ({decision.deny.reason})" if decision.deny is not None and decision.deny.reason else ""
        failures.append(f"expected effect {expect['effect']!r}, got {decision.effect!r}{why}")
    if "model" in expect and expect["model"] != decision.model:
        failures.append(f"expected model {expect['model']!r}, got {decision.model!r}")
    if "max_tokens" in expect:
        actual = decision.mutations.get("max_tokens", request.get("max_tokens"))
        if expect["max_tokens"] != actual:
            failures.append(f"expected max_tokens {expect['max_tokens']}, got {actual}")
    if "policies" in expect:
        problem = _compare_names("policies", list(expect["policies"]), list(decision.policy_names))
        if problem:
            failures.append(problem)
    if "notify" in expect:
        problem = _compare_names("notify", list(expect["notify"]), [m.name for m in decision.notify])
        if problem:
            failures.append(problem)
    if "budgets" in expect:
        problem = _compare_names("budgets", list(expect["budgets"]), [b.name for b in budgets])
        if problem:
            failures.append(problem)
    if "reason_contains" in expect:
        reasons = [m.reason for m in decision.matched if m.reason]
        if not any(expect["reason_contains"] in reason for reason in reasons):
            failures.append(f"expected a reason containing {expect['reason_contains']!r}, got {reasons!r}")
    return failures


def _run_one(engine: PolicyEngine, case: PolicyTestCase) -> TestResult:
    try:
        ctx = Context.from_mapping(case.context, source="context")
    except InvalidAttribute as exc:
        return TestResult(case.name, case.location, False, [str(exc)])
    try:
        decision, budgets = engine.decide(case.hook, ctx, case.request)
    except ValueError as exc:
        return TestResult(case.name, case.location, False, [str(exc)])
    failures = check_expectations(case.expect, case.request, decision, budgets)
    return TestResult(
        case.name, case.location, not failures, failures, decision, tuple(b.name for b in budgets)
    )


def run_tests(bundle: Bundle, engine: PolicyEngine | None = None) -> list[TestResult]:
    """Run every PolicyTest of the bundle, in bundle order."""
    engine = engine or PolicyEngine(bundle)
    return [_run_one(engine, case) for case in bundle.tests]
