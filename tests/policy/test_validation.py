"""Every class of validation issue, with its exact file:line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from costplane.ledger.windows import Window
from costplane.policy.bundle import load_bundle

from .helpers import find, issues, write

POLICY = "kind: Policy\nname: p\non: llm.request\n"


def one(tmp_path: Path, text: str, field: str, line: int) -> str:
    """Write p.yaml, expect an issue for `field` at `line`, return its message."""
    write(tmp_path, "p.yaml", text)
    issue = find(issues(tmp_path), field)
    assert str(issue.location) == f"{tmp_path / 'p.yaml'}:{line}", str(issue)
    return issue.message


def test_all_issues_are_reported_not_just_the_first(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "kind: Policy\nname: a\non: llm.reqest\neffect: denny\n")
    write(tmp_path, "b.yaml", "kind: Budget\nname: b\namount: ten\n")
    found = issues(tmp_path)
    assert [(Path(i.location.file).name, i.location.line, i.field) for i in found] == [
        ("a.yaml", 3, "on"),
        ("a.yaml", 4, "effect"),
        ("b.yaml", 3, "amount"),
    ]


def test_unknown_key_with_did_you_mean(tmp_path: Path) -> None:
    message = one(tmp_path, POLICY + "effect: route\nset: {model: m}\npriorty: 3\n", "priorty", 6)
    assert "unknown key 'priorty'; did you mean 'priority'?" in message


def test_missing_required_key_points_at_the_document(tmp_path: Path) -> None:
    message = one(tmp_path, "# header\nkind: Policy\nname: p\neffect: allow\n", "on", 2)
    assert "required key 'on' is missing" in message


def test_missing_kind_and_unknown_kind(tmp_path: Path) -> None:
    assert "missing" in one(tmp_path, "name: x\n", "kind", 1)
    message = one(tmp_path, "kind: Polcy\nname: x\n", "kind", 1)
    assert "unknown kind 'Polcy' (did you mean 'Policy'?)" in message


def test_document_that_is_not_a_mapping(tmp_path: Path) -> None:
    assert "expected a mapping" in one(tmp_path, "- a\n- b\n", "(document)", 1)


def test_wrong_types(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", POLICY + "effect: allow\npriority: high\nreason: [a]\nwhen: 3\n")
    found = issues(tmp_path)
    assert "expected an integer priority, got the text 'high'" in find(found, "priority").message
    assert find(found, "reason").location.line == 6
    assert "expected a CEL expression, got int 3" in find(found, "when").message


def test_duplicate_names_per_kind_point_at_both(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", POLICY + "effect: allow\n")
    write(tmp_path, "b.yaml", "kind: Budget\nname: p\nmax_calls: 1\n---\n" + POLICY + "effect: deny\n")
    found = issues(tmp_path)
    assert len(found) == 1  # a Budget may share a Policy's name
    assert str(found[0].location) == f"{tmp_path / 'b.yaml'}:6"
    assert found[0].message == f"duplicate Policy name 'p'; also defined at {tmp_path / 'a.yaml'}:2"


def test_unknown_hook(tmp_path: Path) -> None:
    message = one(tmp_path, "kind: Policy\nname: p\non: llm.respons\neffect: allow\n", "on", 3)
    assert "unknown hook 'llm.respons'" in message and "expected one of llm.request" in message


def test_unknown_effect(tmp_path: Path) -> None:
    message = one(tmp_path, POLICY + "effect: require_approval\n", "effect", 4)
    assert "expected one of allow, deny, route, mutate, notify" in message


def test_route_requires_set_model(tmp_path: Path) -> None:
    assert "requires set.model" in one(tmp_path, POLICY + "effect: route\n", "set.model", 1)
    assert "required key 'model'" in one(tmp_path, POLICY + "effect: route\nset: {}\n", "set.model", 5)
    assert "expected a model name" in one(
        tmp_path, POLICY + "effect: route\nset: {model: 4}\n", "set.model", 5
    )
    message = one(tmp_path, POLICY + "effect: route\nset: {model: m, max_tokens: 3}\n", "set.max_tokens", 5)
    assert "unknown key" in message


@pytest.mark.parametrize("effect", ["allow", "deny", "notify"])
def test_effects_without_set(tmp_path: Path, effect: str) -> None:
    message = one(tmp_path, POLICY + f"effect: {effect}\nset: {{model: m}}\n", "set", 5)
    assert f"effect {effect!r} takes no `set`" in message


def test_mutate_parameters(tmp_path: Path) -> None:
    write(
        tmp_path,
        "p.yaml",
        POLICY
        + "effect: mutate\nset:\n  max_tokens: 0\n  temperature: 2.5\n  top_p: 1.5\n"
        + "  reasoning_effort: extreme\n  top_k: 3\n  n: true\n",
    )
    found = issues(tmp_path)
    lines = {i.field: i.location.line for i in found}
    assert lines == {
        "set.max_tokens": 6,
        "set.temperature": 7,
        "set.top_p": 8,
        "set.reasoning_effort": 9,
        "set.top_k": 10,
        "set.n": 11,
    }
    assert "expected a number 0..2, got 2.5" in find(found, "set.temperature").message
    assert "did you mean 'top_p'?" in find(found, "set.top_k").message


def test_mutate_values_are_exact(tmp_path: Path) -> None:
    write(
        tmp_path, "p.yaml", POLICY + "effect: mutate\nset: {max_tokens: 1024, temperature: 2.0, top_p: 0.1}\n"
    )
    policy = load_bundle(tmp_path).policies[0]
    assert policy.set == {"max_tokens": 1024, "temperature": 2.0, "top_p": 0.1}
    assert "expected at least one" in one(tmp_path, POLICY + "effect: mutate\nset: {}\n", "set", 5)
    assert "requires `set`" in one(tmp_path, POLICY + "effect: mutate\n", "set", 1)


def test_cel_compile_error_at_the_line_of_the_expression(tmp_path: Path) -> None:
    message = one(tmp_path, POLICY + "effect: deny\nwhen: ctx.team ==\n", "when", 5)
    assert message.startswith("CEL syntax error at column")


def test_cel_unknown_variables_functions_and_fields(tmp_path: Path) -> None:
    write(
        tmp_path,
        "p.yaml",
        POLICY + 'effect: deny\nwhen: tier == "x" || model == "y" || foo || request.model.startswith("o")'
        ' || ctx.teem == "ml"\n',
    )
    found = [i for i in issues(tmp_path) if i.field == "when"]
    assert {i.location.line for i in found} == {5}
    messages = [i.message for i in found]
    assert "unknown variable 'tier': only ctx and request exist; did you mean ctx.tier?" in messages
    assert "unknown variable 'model': only ctx and request exist; did you mean request.model?" in messages
    assert any(m.startswith("unknown variable 'foo'") for m in messages)
    assert "unknown CEL function 'startswith'; did you mean 'startsWith'?" in messages
    assert any(m.startswith("unknown context field ctx.teem; did you mean 'team'?") for m in messages)


def test_cel_macro_variables_are_allowed(tmp_path: Path) -> None:
    write(
        tmp_path,
        "p.yaml",
        POLICY + 'effect: deny\nwhen: ctx.tags.exists(t, t == "x") && [1].all(n, n > 0)\n',
    )
    assert load_bundle(tmp_path).policies[0].when.startswith("ctx.tags.exists")


def test_budget_amount_limits(tmp_path: Path) -> None:
    assert "at least one of amount, max_calls, max_concurrent" in one(
        tmp_path, "kind: Budget\nname: b\nscope: ctx.team == 'ml'\n", "amount", 1
    )
    assert "only USD" in one(tmp_path, "kind: Budget\nname: b\namount: 5 EUR\n", "amount", 3)
    assert "greater than 0" in one(tmp_path, "kind: Budget\nname: b\namount: 0\n", "amount", 3)
    assert "an integer > 0" in one(tmp_path, "kind: Budget\nname: b\nmax_calls: 0\n", "max_calls", 3)
    message = one(tmp_path, "kind: Budget\nname: b\nmax_concurrent: 1.5\n", "max_concurrent", 3)
    assert "got float 1.5" in message


def test_budget_per(tmp_path: Path) -> None:
    message = one(tmp_path, "kind: Budget\nname: b\nmax_calls: 1\nper: [run, rnu]\n", "per[1]", 4)
    assert "unknown value 'rnu' (did you mean 'run'?)" in message
    assert "listed twice" in one(
        tmp_path, "kind: Budget\nname: b\nmax_calls: 1\nper: [key, key]\n", "per[1]", 4
    )
    assert "expected a list" in one(tmp_path, "kind: Budget\nname: b\nmax_calls: 1\nper: run\n", "per", 4)


def test_budget_windows(tmp_path: Path) -> None:
    head = "kind: Budget\nname: b\nmax_calls: 1\n"
    message = one(
        tmp_path, head + "window: {calendar: month, timezone: Europe/Berln}\n", "window.timezone", 4
    )
    assert message == "unknown IANA time zone 'Europe/Berln'; expected e.g. Europe/Berlin"
    assert "explicit IANA time zone" in one(
        tmp_path, head + "window: {calendar: day}\n", "window.timezone", 4
    )
    assert "did you mean 'month'?" in one(
        tmp_path, head + "window: {calendar: mnth, timezone: UTC}\n", "window.calendar", 4
    )
    assert "expected a duration" in one(tmp_path, head + "window: {rolling: soon}\n", "window.rolling", 4)
    assert "exactly one of rolling or calendar" in one(
        tmp_path, head + "window:\n  rolling: 1h\n  calendar: day\n", "window", 5
    )
    assert "only calendar windows" in one(
        tmp_path, head + "window:\n  rolling: 1h\n  timezone: UTC\n", "window.timezone", 6
    )
    assert "expected lifetime" in one(tmp_path, head + "window: forever\n", "window", 4)


def test_budget_window_values(tmp_path: Path) -> None:
    write(
        tmp_path,
        "b.yaml",
        """
        kind: Budget
        name: a
        max_calls: 1
        ---
        kind: Budget
        name: b
        max_calls: 1
        window: {rolling: 1h}
        ---
        kind: Budget
        name: c
        max_calls: 1
        window: {calendar: week, timezone: America/New_York}
        """,
    )
    windows = [b.window for b in load_bundle(tmp_path).budgets]
    assert windows == [
        Window.lifetime(),
        Window("rolling", seconds=3600),
        Window("calendar", calendar="week", timezone="America/New_York"),
    ]


def test_budget_enforcement_alerts_on_exceed_fail(tmp_path: Path) -> None:
    head = "kind: Budget\nname: b\nmax_calls: 1\n"
    assert "expected one of hard, soft" in one(tmp_path, head + "enforcement: strict\n", "enforcement", 4)
    assert "1..1000" in one(tmp_path, head + "alerts: [50, 1001]\n", "alerts[1]", 4)
    assert "1..1000" in one(tmp_path, head + "alerts: [50.5]\n", "alerts[0]", 4)
    assert "listed twice" in one(tmp_path, head + "alerts: [50, 50]\n", "alerts[1]", 4)
    assert "expected deny or {route: MODEL}" in one(tmp_path, head + "on_exceed: route\n", "on_exceed", 4)
    assert "expected a model name" in one(tmp_path, head + "on_exceed: {route: 5}\n", "on_exceed.route", 4)
    assert "expected one of closed, open" in one(tmp_path, head + "fail: maybe\n", "fail", 4)


def test_budget_fields_are_converted(tmp_path: Path) -> None:
    write(
        tmp_path,
        "b.yaml",
        """
        kind: Budget
        name: b
        description: d
        scope: ctx.team == "ml"
        amount: 5 USD
        max_calls: 10
        max_concurrent: 2
        per: [team, run]
        enforcement: soft
        alerts: [100, 50]
        on_exceed: {route: gpt-4o-mini}
        fail: open
        """,
    )
    budget = load_bundle(tmp_path).budgets[0]
    assert (budget.scope, budget.amount_nano, budget.max_calls, budget.max_concurrent) == (
        'ctx.team == "ml"',
        5_000_000_000,
        10,
        2,
    )
    assert budget.per == ("team", "run") and budget.alerts == (50, 100)
    assert (budget.hard, budget.on_exceed, budget.route_to, budget.fail_open) == (
        False,
        "route",
        "gpt-4o-mini",
        True,
    )
    assert budget.description == "d"


def test_policy_test_documents(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", POLICY + "effect: allow\n")
    write(
        tmp_path,
        "t.yaml",
        """
        kind: PolicyTest
        name: t
        hook: llm.reqest
        context: {team: "not ok!"}
        request: {model: 3, input_tokens: many}
        expect: {effect: notify, policies: [p], budgets: [nope], reasn: x}
        """,
    )
    found = issues(tmp_path)
    lines = {i.field: i.location.line for i in found}
    assert lines == {
        "hook": 3,
        "context.team": 4,
        "request.model": 5,
        "request.input_tokens": 5,
        "expect.effect": 6,
        "expect.reasn": 6,
    }
    assert "expected 1-128 characters" in find(found, "context.team").message


def test_policy_test_references_must_exist(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", POLICY + "effect: allow\n")
    write(tmp_path, "t.yaml", "kind: PolicyTest\nname: t\nexpect:\n  policies: [p, q]\n  budgets: [b]\n")
    found = issues(tmp_path)
    assert [(i.field, i.location.line, i.message) for i in found] == [
        ("expect.policies", 4, "no Policy named 'q' in the bundle"),
        ("expect.budgets", 5, "no Budget named 'b' in the bundle"),
    ]


def test_policy_test_defaults(tmp_path: Path) -> None:
    write(tmp_path, "t.yaml", "kind: PolicyTest\nname: a test with spaces\nexpect: {effect: allow}\n")
    case = load_bundle(tmp_path).tests[0]
    assert (case.hook, case.context, case.request, case.expect) == (
        "llm.request",
        {},
        {},
        {"effect": "allow"},
    )
    assert "required key 'expect'" in one(tmp_path, "kind: PolicyTest\nname: t\n", "expect", 1)
