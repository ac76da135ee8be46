"""The engine: precedence, mutations, fail-closed CEL errors, budget scopes, request values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from costplane.attribution.context import Context
from costplane.ledger.windows import Window
from costplane.policy.bundle import Bundle, load_bundle
from costplane.policy.engine import PolicyEngine, cel_request
from costplane.policy.types import BudgetSpec, BundleError, PolicySpec

from .helpers import write

ML = Context(team="ml", tier="experiment")


def policy(name: str, effect: str, when: str = "true", **kw: Any) -> PolicySpec:
    return PolicySpec(name=name, hook="llm.request", when=when, effect=effect, **kw)


def engine(*policies: PolicySpec, budgets: tuple[BudgetSpec, ...] = ()) -> PolicyEngine:
    return PolicyEngine(Bundle.from_specs(policies, budgets))


def test_nothing_matches_is_allow() -> None:
    decision = engine(policy("p", "deny", 'ctx.team == "support"')).evaluate(
        "llm.request", ML, {"model": "m"}
    )
    assert (decision.effect, decision.model, decision.matched, decision.mutations) == ("allow", "m", (), {})


def test_any_deny_wins_and_the_first_deny_is_named() -> None:
    decision = engine(
        policy("r", "route", set={"model": "small"}, priority=100),
        policy("d1", "deny", reason="first"),
        policy("d2", "deny", reason="second"),
        policy("m", "mutate", set={"max_tokens": 10}),
    ).evaluate("llm.request", ML, {"model": "big"})
    assert decision.effect == "deny"
    assert decision.deny is not None and decision.deny.name == "d1" and decision.deny.reason == "first"
    assert decision.model == "big" and decision.mutations == {}
    assert decision.policy_names == ("r", "d1", "d2", "m")


def test_highest_priority_route_wins_ties_by_bundle_order() -> None:
    decision = engine(
        policy("low", "route", set={"model": "a"}, priority=1),
        policy("high1", "route", set={"model": "b"}, priority=5),
        policy("high2", "route", set={"model": "c"}, priority=5),
    ).evaluate("llm.request", ML, {"model": "big"})
    assert (decision.effect, decision.model) == ("route", "b")
    assert decision.route is not None and decision.route.name == "high1"


def test_mutations_merge_max_tokens_minimum_other_keys_by_priority() -> None:
    eng = engine(
        policy("m1", "mutate", set={"max_tokens": 2000, "temperature": 0.5}, priority=1),
        policy("m2", "mutate", set={"max_tokens": 500, "temperature": 1.0}, priority=3),
        policy("m3", "mutate", set={"max_tokens": 800, "temperature": 0.1, "top_p": 0.9}, priority=3),
    )
    decision = eng.evaluate("llm.request", ML, {"model": "m"})
    assert decision.effect == "mutate"
    assert decision.mutations == {"max_tokens": 500, "temperature": 1.0, "top_p": 0.9}


def test_max_tokens_cap_never_raises_the_clients_value() -> None:
    eng = engine(policy("cap", "mutate", set={"max_tokens": 1024}))
    assert eng.evaluate("llm.request", ML, {"max_tokens": 256}).mutations == {"max_tokens": 256}
    assert eng.evaluate("llm.request", ML, {"max_tokens": 4096}).mutations == {"max_tokens": 1024}
    assert eng.evaluate("llm.request", ML, {"max_tokens": None}).mutations == {"max_tokens": 1024}


def test_route_and_mutate_together() -> None:
    decision = engine(
        policy("cap", "mutate", set={"max_tokens": 100}),
        policy("r", "route", set={"model": "small"}),
    ).evaluate("llm.request", ML, {"model": "big"})
    assert (decision.effect, decision.model, decision.mutations) == ("route", "small", {"max_tokens": 100})


def test_notify_rides_along_and_allow_only_records() -> None:
    decision = engine(policy("ok", "allow", reason="fine"), policy("n", "notify", reason="look")).evaluate(
        "llm.request", ML, {"model": "m"}
    )
    assert decision.effect == "allow"
    assert [m.name for m in decision.notify] == ["n"]
    assert decision.policy_names == ("ok", "n")


@pytest.mark.parametrize(
    ("when", "problem"),
    [
        ("request.temperature > 1.0", "CEL error"),  # a missing field
        ("1 / request.input_tokens == 1", "CEL error"),  # division by zero
        ("request.model", "returned str"),  # not a boolean
    ],
)
def test_when_errors_fail_closed(when: str, problem: str) -> None:
    decision = engine(
        policy("fine", "allow"), policy("broken", "notify", when), policy("later", "deny", reason="x")
    ).evaluate("llm.request", ML, {"model": "m", "input_tokens": 0})
    assert decision.effect == "deny"
    assert decision.deny is not None and decision.deny.name == "broken"
    assert "could not be evaluated, failing closed" in decision.deny.reason
    assert problem in decision.deny.reason


def test_has_guards_optional_request_fields() -> None:
    eng = engine(policy("hot", "deny", "has(request.temperature) && request.temperature > 1.0"))
    assert eng.evaluate("llm.request", ML, {"model": "m"}).effect == "allow"
    assert eng.evaluate("llm.request", ML, {"model": "m", "temperature": None}).effect == "allow"
    assert eng.evaluate("llm.request", ML, {"model": "m", "temperature": 1.5}).effect == "deny"


def test_request_defaults_and_none_values() -> None:
    req = cel_request({"model": None, "input_tokens": 12, "user_param": None, "billed_units": ("a",)})
    assert req == {
        "model": "",
        "provider": "",
        "endpoint": "",
        "input_tokens": 12,
        "input_tokens_bound": 0,
        "max_tokens": 0,
        "stream": False,
        "billed_units": ["a"],
    }
    eng = engine(policy("p", "deny", 'request.model == "" && request.max_tokens == 0 && !request.stream'))
    assert eng.evaluate("llm.request", Context(), {"model": None, "max_tokens": None}).effect == "deny"


def test_ctx_tags_key_and_unset_dimensions() -> None:
    eng = engine(
        policy("tagged", "notify", '"env" in ctx.tags && ctx.tags.env == "dev"'),
        policy("keyed", "notify", 'ctx.key == "k1" && ctx.pipeline == ""'),
    )
    decision = eng.evaluate("llm.request", Context(tags={"env": "dev"}, key_id="k1"), {})
    assert [m.name for m in decision.notify] == ["tagged", "keyed"]


def test_whole_ctx_usage_sees_every_field() -> None:
    eng = engine(policy("p", "deny", 'size(ctx) == 16 && ctx["team"] == "ml"'))
    assert eng.evaluate("llm.request", ML, {}).effect == "deny"


def test_budgets_whose_scope_matches_and_errors_apply() -> None:
    budgets = (
        BudgetSpec("all", "true", Window.lifetime(), max_calls=1),
        BudgetSpec("ml", 'ctx.team == "ml"', Window.lifetime(), max_calls=1),
        BudgetSpec("support", 'ctx.team == "support"', Window.lifetime(), max_calls=1),
        BudgetSpec("broken", "request.temperature == 1", Window.lifetime(), max_calls=1),  # unset: an error
        BudgetSpec("big", "request.input_tokens > 1000", Window.lifetime(), max_calls=1),
    )
    eng = engine(budgets=budgets)
    decision, matched = eng.decide("llm.request", ML, {"input_tokens": 10})
    assert decision.effect == "allow"
    assert [b.name for b in matched] == ["all", "ml", "broken"]
    assert [b.name for b in eng.budgets_for("llm.request", ML, {"input_tokens": 5000})] == [
        "all",
        "ml",
        "broken",
        "big",
    ]


def test_unknown_hook_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown hook"):
        engine().decide("llm.response", ML, {})


def test_only_policies_of_the_hook_are_evaluated(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", "kind: Policy\nname: p\non: llm.request\neffect: deny\n")
    eng = PolicyEngine(load_bundle(tmp_path))
    assert eng.evaluate("llm.request", ML, {}).effect == "deny"
    assert eng.revision.startswith(("git:", "sha256:"))


def test_from_specs_rejects_bad_cel_and_duplicates() -> None:
    with pytest.raises(BundleError) as info:
        Bundle.from_specs([policy("a", "deny", "ctx.team =="), policy("b", "deny"), policy("b", "deny")])
    fields = [i.field for i in info.value.issues]
    assert fields == ["when", "name"]


def test_from_specs_checks_effects_and_routes() -> None:
    with pytest.raises(BundleError) as info:
        Bundle.from_specs([policy("a", "route"), policy("b", "require_approval")])
    assert [i.field for i in info.value.issues] == ["set.model", "effect"]
