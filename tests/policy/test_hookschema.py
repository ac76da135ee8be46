"""Each hook's request schema: the static checks it drives, the defaults, PolicyTest validation, the docs."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pytest

from costplane.attribution.context import Context
from costplane.core.environments import EnvironmentCore
from costplane.core.envpricing import Estimate
from costplane.core.requests import LlmRequest
from costplane.iac.check import _facts as iac_facts
from costplane.iac.plan import PlannedResource
from costplane.iac.price import PricedResource
from costplane.ledger.windows import Window
from costplane.policy.bundle import Bundle, load_bundle
from costplane.policy.engine import PolicyEngine
from costplane.policy.hookschema import (
    BUDGET_HOOKS,
    DECISION_INPUT_VERSION,
    HOOK_SCHEMAS,
    SCHEMAS,
    budget_fields,
    check_value,
    docs_with_tables,
    request_defaults,
)
from costplane.policy.types import EFFECTS, HOOK_EFFECTS, HOOKS, BudgetSpec, BundleError, PolicySpec

from .helpers import find, issues, write

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "bundle"


def test_docs_policy_md_shows_the_generated_tables() -> None:
    page = (ROOT / "docs" / "policy.md").read_text()
    fresh = docs_with_tables(page)
    diff = "".join(difflib.unified_diff(page.splitlines(True), fresh.splitlines(True), "docs/policy.md",
                                        "generated"))
    assert page == fresh, "docs/policy.md differs from costplane.policy.hookschema; regenerate it:\n" + diff


def test_every_hook_has_one_schema_and_its_effects() -> None:
    assert tuple(s.hook for s in HOOK_SCHEMAS) == HOOKS
    assert "spend.record" in HOOKS
    assert HOOK_EFFECTS["spend.record"] == ("allow", "notify")
    for schema in HOOK_SCHEMAS:
        assert set(schema.effects) <= set(EFFECTS)
        assert len(set(schema.names)) == len(schema.names), schema.hook
        for item in schema.fields:
            assert check_value(item, item.example) is None, (schema.hook, item.name)
            assert item.optional or check_value(item, item.default) is None, (schema.hook, item.name)
    assert set(BUDGET_HOOKS) <= set(HOOKS)
    assert DECISION_INPUT_VERSION == 1


def test_a_field_has_one_type_whatever_the_hook() -> None:
    """A budget scope reads a field at several hooks: it must mean the same type everywhere."""
    types: dict[str, set[str]] = {}
    for schema in HOOK_SCHEMAS:
        for item in schema.fields:
            types.setdefault(item.name, set()).add(item.cel_type)
    assert {name: kinds for name, kinds in types.items() if len(kinds) > 1} == {}


EFFECT_OF = {"environment.runtime": "notify", "slo.breach": "notify", "spend.record": "notify"}


@pytest.mark.parametrize("schema", HOOK_SCHEMAS, ids=lambda s: s.hook)
def test_a_typo_in_a_request_field_is_a_load_error_at_every_hook(schema: Any, tmp_path: Path) -> None:
    field = schema.fields[0].name
    typo = field[:-1] + ("x" if field[-1] != "x" else "y")
    effect = EFFECT_OF.get(schema.hook, "deny")
    write(tmp_path, "p.yaml", f"""
        kind: Policy
        name: good
        on: {schema.hook}
        when: has(request.{field}) || request.{field} == request.{field}
        effect: {effect}
        ---
        kind: Policy
        name: typo
        on: {schema.hook}
        effect: {effect}
        when: request.{typo} != request.{field}
        """)
    problem = find(issues(tmp_path), "when")
    assert problem.location.line == 11
    assert f"unknown request field request.{typo} at hook {schema.hook!r}" in problem.message
    assert f"did you mean request.{field}?" in problem.message
    (tmp_path / "p.yaml").write_text((tmp_path / "p.yaml").read_text().replace(typo, field))
    load_bundle(tmp_path)  # every declared field loads


def test_a_field_of_another_hook_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", """
        kind: Policy
        name: model-at-launch
        on: environment.launch
        when: request.model == "gpt-4o"
        effect: deny
        """)
    assert "at hook 'environment.launch'" in find(issues(tmp_path), "when").message


def test_methods_comments_and_strings_are_not_fields(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", """
        kind: Policy
        name: fine
        on: llm.request
        when: 'request.exists(k, k == "user") && request.model != "request.nope" // request.nope'
        effect: notify
        """)
    assert load_bundle(tmp_path).policy("fine") is not None


def test_budget_scopes_accept_a_field_of_any_budget_hook(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", """
        kind: Budget
        name: big-plans
        scope: request.monthly_usd > 1000.0 || request.model == "gpt-4o" || request.cost_nano > 0
        max_calls: 10
        ---
        kind: Budget
        name: idle
        scope: request.idle_seconds > 0
        max_calls: 10
        ---
        kind: Budget
        name: typo
        scope: request.modle == "x"
        max_calls: 10
        """)
    found = issues(tmp_path)
    assert [(i.field, i.location.line) for i in found] == [("scope", 8), ("scope", 13)]
    assert "request.idle_seconds at any hook that evaluates budgets" in found[0].message
    assert "did you mean request.model?" in found[1].message


def test_a_scope_reads_a_field_its_hook_lacks_as_unset() -> None:
    budgets = (BudgetSpec("gpt4o", 'request.model == "gpt-4o"', Window.lifetime(), max_calls=1),
               BudgetSpec("big-gpus", "request.gpu_count >= 4", Window.lifetime(), max_calls=1))
    engine = PolicyEngine(Bundle.from_specs(budgets=budgets))
    assert [b.name for b in engine.budgets_for("environment.launch", Context(), {"gpu_count": 8})] == ["big-gpus"]
    assert [b.name for b in engine.budgets_for("llm.request", Context(), {"model": "gpt-4o"})] == ["gpt4o"]
    assert engine.defaults["llm.request"]["gpu_count"] == 0
    assert "gpu_count" not in request_defaults("llm.request")  # only what a scope reads is added


def test_defaults_follow_the_hook() -> None:
    launch = request_defaults("environment.launch")
    assert launch["gpu_type"] == "" and launch["inputs"] == {} and "model" not in launch
    llm = request_defaults("llm.request")
    assert "temperature" not in llm  # optional: absent when unset
    assert set(budget_fields()) >= {"model", "monthly_usd", "cost_nano", "gpu_count"}


def test_from_specs_checks_fields_too() -> None:
    with pytest.raises(BundleError, match=r"request\.gpus at hook .environment\.launch.; did you mean"):
        Bundle.from_specs([PolicySpec("p", "environment.launch", "request.gpus > 4", "deny")])


BLUEPRINT = """
kind: Blueprint
name: box
driver: {type: process, command: ["sleep", "1"]}
lifecycle: {ttl: 1h, max_ttl: 2h, idle: {metric: tokens_per_second, below: 1, for: 10m}}
"""


def test_runtime_accepts_the_idle_metrics_of_the_blueprints(tmp_path: Path) -> None:
    write(tmp_path, "bp.yaml", BLUEPRINT)
    write(tmp_path, "p.yaml", """
        kind: Policy
        name: slow
        on: environment.runtime
        when: has(request.tokens_per_second) && request.tokens_per_second < 1.0 && request.gpu_util < 5.0
        effect: teardown
        ---
        kind: PolicyTest
        name: slow box
        hook: environment.runtime
        request: {tokens_per_second: 0.5, gpu_util: 1}
        expect: {effect: teardown}
        """)
    load_bundle(tmp_path)
    (tmp_path / "bp.yaml").unlink()
    found = issues(tmp_path)
    assert [(i.field, i.location.line) for i in found] == [("when", 4), ("request.tokens_per_second", 10)]


def test_policy_test_requests_are_checked_against_the_hook(tmp_path: Path) -> None:
    write(tmp_path, "t.yaml", """
        kind: PolicyTest
        name: launch
        hook: environment.launch
        request:
          gpu_typ: A100
          gpu_count: "4"
          inputs: {size: 2}
          hourly_usd: 3
        expect: {effect: allow}
        ---
        kind: PolicyTest
        name: llm
        request: {model: gpt-4o, temperature: 0.2, tools: []}
        expect: {effect: allow}
        """)
    found = {i.field: (i.location.line, i.message) for i in issues(tmp_path)}
    assert set(found) == {"request.gpu_typ", "request.gpu_count", "request.inputs", "request.tools"}
    assert found["request.gpu_typ"][0] == 5 and "did you mean 'gpu_type'" in found["request.gpu_typ"][1]
    assert found["request.gpu_count"] == (6, "expected an integer (int), got the text '4'")
    assert "mapping of string to string" in found["request.inputs"][1]
    assert found["request.tools"][0] == 13


def _assert_conforms(hook: str, facts: dict[str, Any]) -> None:
    schema = SCHEMAS[hook]
    for name, value in facts.items():
        item = schema.field(name)
        assert item is not None, f"{hook}: {name} is passed but not declared"
        if value is not None:
            assert check_value(item, value) is None, (hook, name, value)
    for item in schema.fields:
        assert item.optional or item.name in facts, f"{hook}: {item.name} is declared but never passed"


def test_the_llm_facts_of_the_decision_core_conform() -> None:
    request = LlmRequest("openai", "chat.completions", "gpt-4o", 120, 100, 256, True,
                         {"temperature": 0.2, "top_p": 1, "n": 2, "user": "u", "service_tier": "flex",
                          "billed_units": ["web_searches"]})
    _assert_conforms("llm.request", request.cel("openai"))


def test_the_launch_facts_conform() -> None:
    blueprint = load_bundle(EXAMPLES).blueprints[0]
    priced = Estimate(({"kind": "gpu", "sku": "gcp/x", "count": 1, "gpus_each": 2, "gpu_type": "L4",
                        "hourly_nano": 10**9},), 10**9)
    _assert_conforms("environment.launch", EnvironmentCore._facts(blueprint, {"gpu_type": "L4"}, priced, 3600))


def test_the_iac_facts_conform() -> None:
    resource = PlannedResource("aws_instance.a", "aws_instance", "a", "aws", ("create",), {})
    priced = PricedResource(resource, "aws", "p4d.24xlarge", ("aws/p4d",), "A100-40GB", 8, 32 * 10**9,
                            {"team": "ml"}, region="us-east-1")
    _assert_conforms("iac.plan", iac_facts(priced, 10**12))
