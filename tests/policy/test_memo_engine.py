"""MemoEngine (policy replay's engine) decides exactly what PolicyEngine decides, memo or not."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from costplane.attribution.context import Context
from costplane.ledger.windows import Window
from costplane.policy import memo
from costplane.policy.bundle import Bundle
from costplane.policy.engine import PolicyEngine
from costplane.policy.memo import MemoEngine
from costplane.policy.types import BudgetSpec, PolicySpec

WHENS = [
    'ctx.tier == "experiment" && request.model == "gpt-4o" && request.input_tokens < 400',
    'ctx.team == "support" && request.model.startsWith("claude")',
    "request.temperature == 1",  # 1, 1.0 and true are different CEL values; absent: an error
    "has(request.temperature) && request.temperature > 0.5",
    'string(request.temperature) == "-0"',  # -0.0 and 0.0 compare equal but print apart
    "request.stream",  # a bool, or an int that is not one (fails closed)
    'ctx.tags.env == "dev"',  # a missing tag: an error
    'ctx.key != "" && ctx.run != ""',
    "size(request) > 9",  # the whole request: evaluated every time
    'request.exists(k, k == "user")',  # a macro on the map sees every converted field
    'ctx.team in ["ml", "web"] || request.max_tokens > 600',
    'request.billed_units == ["x"]',  # a list value: the decision is made without the memo
    "true",
]
SCOPES = ['ctx.team == "ml"', 'ctx.run != ""', "request.input_tokens > 300", "request.temperature > 0.2"]
EFFECTS = [("deny", {}), ("route", {"model": "small"}), ("mutate", {"max_tokens": 256}), ("notify", {}),
           ("mutate", {"cache": True}), ("allow", {})]


def bundle() -> Bundle:
    policies = [PolicySpec(name=f"p{i}", hook="llm.request", when=when, effect=EFFECTS[i % len(EFFECTS)][0],
                           set=EFFECTS[i % len(EFFECTS)][1], priority=i % 3)
                for i, when in enumerate(WHENS)]
    budgets = [BudgetSpec(name=f"b{i}", scope=scope, amount_nano=10**9, window=Window.lifetime())
               for i, scope in enumerate(SCOPES)]
    return Bundle.from_specs(policies, budgets)


def random_request(rng: random.Random) -> tuple[Context, dict[str, Any]]:
    ctx = Context(team=rng.choice(["ml", "web", "support", None]), tier=rng.choice(["experiment", "production"]),
                  run=rng.choice([None, "r-1", "r-2", "r-3"]), key_id=rng.choice([None, "k-1"]),
                  tags=rng.choice([{}, {"env": "dev"}, {"env": "prod", "x": "y"}]))
    request: dict[str, Any] = {"model": rng.choice(["gpt-4o", "claude-3", "small", None]),
                               "input_tokens": rng.choice([0, 100, 399, 400, 1000]),
                               "max_tokens": rng.choice([None, 0, 512, 1024]),
                               "stream": rng.choice([True, False, 0, 1, None])}
    temperature = rng.choice([None, "absent", 0, 1, 1.0, True, 0.7, -0.0, 0.0, Decimal("0.2")])
    if temperature != "absent":
        request["temperature"] = temperature
    if rng.random() < 0.3:
        request["user"] = "u-1"
    if rng.random() < 0.1:
        request["billed_units"] = rng.choice([("x",), ["x", "y"]])
    return ctx, request


@pytest.mark.parametrize("entries", [memo.MAX_ENTRIES, 3])
def test_memo_engine_decides_as_the_engine(entries: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memo, "MAX_ENTRIES", entries)  # 3: the memos are cleared over and over
    plain, memoised = PolicyEngine(bundle()), MemoEngine(bundle())
    rng = random.Random(7)
    for _ in range(3000):
        ctx, request = random_request(rng)
        assert memoised.decide("llm.request", ctx, request) == plain.decide("llm.request", ctx, request), request


def test_seen_values_build_no_cel_context(monkeypatch: pytest.MonkeyPatch) -> None:
    specs = (PolicySpec(name="p", hook="llm.request", when='ctx.team == "ml" && request.model == "big"',
                        effect="route", set={"model": "small"}),)
    engine = MemoEngine(Bundle.from_specs(specs, ()))
    built: list[Any] = []
    real = memo.cel_activation
    monkeypatch.setattr(memo, "cel_activation", lambda *args: built.append(args[2:4]) or real(*args))
    for run in ("r-1", "r-2", "r-3"):  # a field no expression reads does not matter
        decision, _ = engine.decide("llm.request", Context(team="ml", run=run), {"model": "big", "input_tokens": 5})
        assert decision.model == "small"
    assert built == [(frozenset({"team"}), frozenset({"model"}))]  # one miss, with only the fields read
    assert engine.decide("llm.request", Context(team="web"), {"model": "big"})[0].effect == "allow"
    assert len(built) == 2


def test_unknown_hook_is_still_an_error() -> None:
    with pytest.raises(ValueError, match="unknown hook"):
        MemoEngine(bundle()).decide("llm.nothing", Context(), {})
