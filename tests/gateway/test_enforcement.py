"""Policies, budgets, loop guard and cache, as an agent sees them: in its SDK's own errors."""

from __future__ import annotations

import time

import openai
import pytest

from costplane.money import parse_usd

from .conftest import DEFAULT_BUNDLE

BUDGETS = DEFAULT_BUNDLE + """
---
kind: Budget
name: growth-daily
scope: ctx.team == "growth"
amount: 0.002 USD
window: {calendar: day, timezone: Europe/Berlin}
enforcement: hard
---
kind: Budget
name: ml-degrade
scope: ctx.team == "ml-agents"
amount: 0.0005 USD
window: {rolling: 1h}
on_exceed: {route: gpt-4o-mini}
---
kind: Budget
name: run-steps
scope: ctx.agent == "stepper"
per: [run]
max_calls: 3
"""

ASK = [{"role": "user", "content": "Draft a short reply to the customer."}]


def test_policy_denial_names_policy_revision_and_decision(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(BUDGETS)
    client = gw.openai(gw.key(team="ml", tier="experiment"))
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(model="o3-mini", messages=ASK)
    message = str(info.value)
    decision_id = info.value.response.headers["x-costplane-decision-id"]
    assert "no-reasoning-models-in-experiments" in message and decision_id in message
    assert gw.app.bundle.revision in message
    assert info.value.response.headers["x-should-retry"] == "false"
    [decision] = gw.app.store.list_decisions(effect="deny")
    assert decision.id == decision_id and decision.policies == ("no-reasoning-models-in-experiments",)
    assert decision.bundle_revision == gw.app.bundle.revision
    assert gw.app.store.count_events() == 0


def test_route_sends_the_small_model_and_records_the_saving(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(BUDGETS)
    raw = gw.openai(gw.key(team="ml", tier="experiment")).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=ASK)
    assert raw.parse().model.startswith("gpt-4o-mini")
    assert raw.headers["x-costplane-effect"] == "route"
    [event] = gw.app.store.list_events()
    assert event.model == "gpt-4o-mini" and event.requested_model == "gpt-4o"
    assert event.saved_nano > event.cost_nano > 0  # gpt-4o costs ~16x gpt-4o-mini


def test_hard_budget_denies_with_402_and_never_overspends(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(BUDGETS)
    client = gw.openai(gw.key(team="growth"))
    served = 0
    with pytest.raises(openai.APIStatusError) as info:
        for _ in range(200):
            client.chat.completions.create(model="gpt-4o", messages=ASK, max_tokens=50)
            served += 1
    assert info.value.status_code == 402
    assert "growth-daily" in str(info.value) and "limit 0.002 USD" in str(info.value)
    assert served > 0
    spent = sum(e.cost_nano for e in gw.app.store.list_events())
    assert 0 < spent <= parse_usd("0.002 USD")
    assert gw.app.store.open_reservations() == 0


def test_budget_aware_degradation_routes_to_cheaper_model(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(BUDGETS)
    client = gw.openai(gw.key(team="ml-agents"))
    models = []
    for _ in range(6):
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=ASK, max_tokens=30)
        models.append(raw.headers["x-costplane-model"])
    assert models[0] == "gpt-4o" and models[-1] == "gpt-4o-mini"
    degraded = [d for d in gw.app.store.list_decisions() if d.effect == "route"]
    assert degraded and "ml-degrade" in degraded[0].reason


def test_per_run_call_limit_is_a_429_that_does_not_retry(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(BUDGETS)
    client = gw.openai(gw.key(team="ml", agent="stepper"))
    for step in range(3):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"step {step}"}],
                                       extra_headers={"x-costplane-run": "r1"})
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK, extra_headers={"x-costplane-run": "r1"})
    assert "run-steps" in str(info.value) and "run=r1" in str(info.value)
    assert info.value.response.headers["x-should-retry"] == "false"
    # another run has its own counter
    client.chat.completions.create(model="gpt-4o-mini", messages=ASK, extra_headers={"x-costplane-run": "r2"})


def test_loop_detection(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(BUDGETS, loop_threshold=3)
    client = gw.openai(gw.key(team="ml", agent="looper"))
    headers = {"x-costplane-run": "loop-1"}
    client.chat.completions.create(model="gpt-4o-mini", messages=ASK, extra_headers=headers)
    # whitespace and case do not make a request new
    client.chat.completions.create(model="gpt-4o-mini", extra_headers=headers,
                                   messages=[{"role": "user", "content": "  draft a short REPLY to the customer. "}])
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK, extra_headers=headers)
    assert "loop detected in run 'loop-1'" in str(info.value)
    # the same request in another run is fine
    client.chat.completions.create(model="gpt-4o-mini", messages=ASK, extra_headers={"x-costplane-run": "loop-2"})


def test_exact_match_cache_hit_is_free_and_records_the_saving(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(BUDGETS)
    client = gw.openai(gw.key(team="ml"))
    headers = {"x-costplane-cache": "on"}
    first = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK, temperature=0,
                                                             extra_headers=headers)
    second = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK, temperature=0,
                                                              extra_headers=headers)
    assert second.headers["x-costplane-cache"] == "hit"
    assert second.headers["x-costplane-cost-usd"] == "0"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    events = sorted(gw.app.store.list_events(), key=lambda e: e.ts)
    assert [e.kind for e in events] == ["llm", "cache_hit"]
    assert events[1].cost_nano == 0 and events[1].saved_nano == events[0].cost_nano > 0
    # non-deterministic requests are never served from the cache
    third = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK, temperature=0.7,
                                                             extra_headers=headers)
    assert "x-costplane-cache" not in third.headers


def test_unknown_price_is_denied_by_default_and_flagged_when_charged(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(BUDGETS)
    with pytest.raises(openai.PermissionDeniedError) as info:
        gw.openai(gw.key()).chat.completions.create(model="gpt-acme-private", messages=ASK)
    assert "gpt-acme-private" in str(info.value) and info.value.response.headers[
        "x-costplane-error-code"] == "unknown_price"
    charged = make_gateway(BUDGETS, pricing={"unknown_price": {"action": "charge", "input": "10", "output": "30"}})
    charged.openai(charged.key()).chat.completions.create(model="gpt-acme-private", messages=ASK)
    [event] = charged.app.store.list_events()
    assert event.price_flagged and event.cost_nano > 0


def test_bundle_hot_reload_applies_new_policies(make_gateway, tmp_path) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(BUDGETS, reload_interval="1s")
    client = gw.openai(gw.key(team="ml"))
    client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    before = gw.app.bundle.revision
    bundle_file = next(iter(gw.app.config.bundle.glob("*.yaml")))  # type: ignore[union-attr]
    bundle_file.write_text(bundle_file.read_text() + """---
kind: Policy
name: freeze-ml
on: llm.request
when: ctx.team == "ml"
effect: deny
reason: ml is frozen
""")
    deadline = time.monotonic() + 10
    while gw.app.bundle.revision == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gw.app.bundle.revision != before
    with pytest.raises(openai.PermissionDeniedError, match="freeze-ml"):
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK)


def test_a_mutate_policy_can_opt_into_the_cache(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(BUDGETS + """---
kind: Policy
name: cache-embeddings
on: llm.request
when: request.endpoint == "embeddings"
effect: mutate
set: {cache: true}
""")
    client = gw.openai(gw.key(team="ml"))
    client.embeddings.create(model="text-embedding-3-small", input="the same document")
    raw = client.embeddings.with_raw_response.create(model="text-embedding-3-small", input="the same document")
    assert raw.headers["x-costplane-cache"] == "hit"
