"""GET /metrics: scraped after real traffic, parsed, and every value checked against the store."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx

from costplane.attribution.context import Context
from costplane.ledger.types import CostEvent
from costplane.metrics.collect import OTHER, spend_families
from costplane.money import format_usd

BUDGET = """
kind: Budget
name: team-daily
scope: "true"
per: [team]
amount: 5 USD
window: {calendar: day, timezone: UTC}
"""

_SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], str]:
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        out[(match.group(1), labels)] = match.group(3)
    return out


def test_metrics_match_the_store(make_served) -> None:
    served = make_served(BUDGET)
    for team, calls in (("a", 3), ("b", 2)):
        client = served.openai(served.key(team=team))
        for _ in range(calls):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    response = httpx.get(f"{served.url}/metrics", timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = parse(response.text)
    store = served.app.store
    for row in store.spend(group_by=["team"]):
        labels = frozenset({("team", str(row.group["team"]))})
        assert samples[("costplane_spend_by_team_usd_total", labels)] == format_usd(row.cost_nano)
        assert samples[("costplane_cost_events_by_team_total", labels)] == str(row.events)
    for (hook, effect), count in store.decision_counts().items():
        assert samples[("costplane_decisions_total", frozenset({("hook", hook), ("effect", effect)}))] == str(count)
    assert samples[("costplane_open_reservations", frozenset())] == "0"
    spent_a = next(r.cost_nano for r in store.spend(group_by=["team"]) if r.group["team"] == "a")
    budget = frozenset({("budget", "team-daily"), ("partition", "team=a"), ("window", "calendar day (UTC)"),
                        ("hard", "true")})
    assert samples[("costplane_budget_spent_usd", budget)] == format_usd(spent_a)
    assert samples[("costplane_budget_limit_usd", budget)] == "5"
    chat = {("path", "/v1/chat/completions"), ("status", "2xx")}
    assert samples[("costplane_gateway_request_duration_seconds_count", frozenset(chat))] == "5"
    assert samples[("costplane_gateway_request_duration_seconds_bucket", frozenset({*chat, ("le", "+Inf")}))] == "5"
    assert samples[("costplane_gateway_first_byte_seconds_count", frozenset(chat))] == "5"


def test_spend_labels_are_bounded(store) -> None:
    now = datetime.now(UTC)
    for i, team in enumerate(("t1", "t2", "t3", "t4")):
        store.record_event(CostEvent(id=f"e{i}", ts=now, context=Context(team=team), provider="openai",
                                     model="gpt-4o", cost_nano=(i + 1) * 1_000_000_001))
    store.record_event(CostEvent(id="e9", ts=now, context=Context(), provider="openai", model="gpt-4o",
                                 cost_nano=7))
    family = next(f for f in spend_families(store, top_n=2) if f.name == "costplane_spend_by_team_usd_total")
    values = {dict(labels)["team"]: value for _, labels, value in family.samples}
    assert values == {"t4": "4.000000004", "t3": "3.000000003", OTHER: format_usd(2_000_000_002 + 1_000_000_001 + 7)}
