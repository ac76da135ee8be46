"""assess.observe reads the spend shares and decision counts as SQL aggregates, on both stores (the
figures equal those computed from every event and decision object), and says when a window has no spend."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from costplane.attribution.context import Context
from costplane.ledger import CostEvent, DecisionRecord, Store
from costplane.optimize.assess import assess, observe, render_markdown

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SINCE = T0 + timedelta(days=10)
_ALL = 1_000_000


def _context(rng: random.Random) -> Context:
    def pick(name: str) -> str | None:
        return rng.choice([None, "", f"{name}-{rng.randrange(3)}"])  # unset, empty and set all occur

    return Context(team=pick("team"), project=pick("project"), owner=pick("owner"), run=pick("run"),
                   agent=pick("agent"))


def _ledger(store: Store) -> None:
    rng = random.Random(20261123)
    events = [
        CostEvent(id=f"evt_{i:04d}", ts=T0 + timedelta(hours=rng.randrange(24 * 30)), context=_context(rng),
                  provider="openai", model="gpt-4o", cost_nano=rng.randrange(0, 10**9),
                  saved_nano=rng.choice([0, rng.randrange(10**7)]),
                  decision_id=rng.choice([None, f"dec_{i:04d}"]))
        for i in range(600)
    ]
    store.record_nodes((), events)
    for i in range(300):
        store.record_decision(DecisionRecord(
            id=f"dec_{i:04d}", ts=T0 + timedelta(hours=rng.randrange(24 * 30)),
            hook=rng.choice(["llm.request", "environment.launch", "iac.plan"]),
            effect=rng.choice(["allow", "deny", "route", "mutate", "notify"]), bundle_revision="r",
            context=Context(team="t"), input={}, result={}))


def test_observe_aggregates_equal_the_per_object_figures(store: Store) -> None:
    _ledger(store)
    seen = observe(store, None, SINCE)
    events = store.list_events(since=SINCE, limit=_ALL)
    decisions = store.list_decisions(since=SINCE, limit=_ALL)
    assert 0 < len(events) < 600 and 0 < len(decisions) < 300  # the window cuts both
    assert seen.events == len(events)
    assert seen.spend_nano == sum(e.cost_nano for e in events)
    assert seen.saved_nano == sum(e.saved_nano for e in events)
    assert seen.admitted_nano == sum(e.cost_nano for e in events if e.decision_id)
    assert seen.team_nano == sum(e.cost_nano for e in events if e.context.team)
    assert seen.full_context_nano == sum(
        e.cost_nano for e in events
        if e.context.team and (e.context.project or e.context.owner) and (e.context.run or e.context.agent))
    assert seen.run_nano == sum(e.cost_nano for e in events if e.context.run)
    assert seen.decisions == len(decisions)
    assert seen.decision_hooks == tuple(sorted({d.hook for d in decisions}))
    assert seen.optimizing_decisions == sum(1 for d in decisions if d.effect in ("route", "mutate"))


def test_a_window_without_spend_is_said_not_scored_silently(store: Store) -> None:
    _ledger(store)
    empty = assess(observe(store, None, T0 + timedelta(days=400)))
    assert empty.observations.events == 0
    assert len(empty.warnings) == 1 and "no cost events since 2027-04-05 00:00 UTC" in empty.warnings[0]
    assert empty.to_json()["warnings"] == list(empty.warnings)
    assert f"> **Note:** {empty.warnings[0]}" in render_markdown(empty).splitlines()
    busy = assess(observe(store, None, SINCE))
    assert busy.warnings == () and busy.to_json()["warnings"] == []
    assert "**Note:**" not in render_markdown(busy)
