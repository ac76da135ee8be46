"""GET /api/v1/overview: figures checked against seeded events, team scoping (finance sees both
teams, dev-a only alpha), local days in several zones, the forecast, and clear 400s."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from api_harness import Api

from costplane.api.overview import build_overview
from costplane.api.principal import Principal
from costplane.attribution.context import Context
from costplane.ledger.types import CostEvent, DecisionRecord
from costplane.money import format_usd

BOTH = pytest.mark.parametrize("store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                               indirect=True)


def _event(eid: str, ts: datetime, team: str, cost: int, agent: str | None = None) -> CostEvent:
    return CostEvent(id=eid, ts=ts, context=Context(team=team, agent=agent or f"{team}-bot"), provider="openai",
                     model="gpt-4o-mini", cost_nano=cost)


def _deny(did: str, ts: datetime, team: str, reason: str, result: dict[str, str]) -> DecisionRecord:
    return DecisionRecord(id=did, ts=ts, hook="llm.request", effect="deny", bundle_revision="r", reason=reason,
                          context=Context(team=team), input={}, result=result, policies=("no-gpt4",))


def _principal(api: Api, name: str) -> Principal:
    user = api.app.store.user_by_name(name)
    assert user is not None
    return Principal(user, "t")


@BOTH
def test_overview_figures_and_scoping(make_api: Callable[[str | None], Api], store_url: Callable[[], str]) -> None:
    api = make_api(store_url())
    store = api.app.store
    now = datetime.now(UTC)
    # harness: alpha 1.25 (now) + 0.25 (now-2m), beta 2.000000001 (now-1m); plus the 24 h before:
    store.record_event(_event("old-alpha", now - timedelta(hours=30), "alpha", 5_000_000_000))
    store.record_event(_event("old-beta", now - timedelta(hours=47), "beta", 1_000_000_000, agent="beta-etl"))
    store.record_decision(_deny("d-pol", now - timedelta(minutes=5), "alpha",
                                "denied by policy 'no-gpt4': too big (decision d-pol, bundle r)",
                                {"code": "policy_denied"}))
    store.record_decision(_deny("d-bud", now - timedelta(minutes=6), "beta", "budget 'beta-only' exceeded",
                                {"code": "budget_exceeded", "budget": "beta-only"}))
    store.record_decision(_deny("d-old", now - timedelta(hours=25), "alpha", "denied by policy 'no-gpt4': x",
                                {"code": "policy_denied"}))
    events = [e for e in store.list_events(limit=100)]

    fin = api.get("fin", "/api/v1/overview")
    assert fin.status_code == 200, fin.text
    body = fin.json()
    at = datetime.fromisoformat(body["now"])
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    month = midnight.replace(day=1)
    assert body["timezone"] == "UTC" and body["bundle_revision"] == api.app.bundle.revision
    assert body["today_usd"] == format_usd(sum(e.cost_nano for e in events if midnight <= e.ts <= at))
    assert body["month_to_date_usd"] == format_usd(sum(e.cost_nano for e in events if month <= e.ts <= at))
    assert body["last_24h_usd"] == "3.500000001"
    assert len(body["burn_rate"]["hours"]) == 24
    assert sum(Decimal(h["cost_usd"]) for h in body["burn_rate"]["hours"]) == Decimal("3.500000001")
    assert sum(Decimal(d["cost_usd"]) for d in body["daily"]) == Decimal(body["month_to_date_usd"])
    assert body["daily"][-1]["start"] == at.date().isoformat()
    assert body["top_movers"]["team"] == [
        {"name": "alpha", "last_24h_usd": "1.5", "previous_24h_usd": "5", "delta_usd": "-3.5"},
        {"name": "beta", "last_24h_usd": "2.000000001", "previous_24h_usd": "1", "delta_usd": "1.000000001"}]
    assert [m["name"] for m in body["top_movers"]["agent"]] == ["alpha-bot", "beta-bot", "beta-etl"]
    # the harness's beta deny has no code or reason: a 'guard' denial
    assert body["denials"] == {"total": 3, "by": [{"kind": "budget", "name": "beta-only", "count": 1},
                                                  {"kind": "guard", "name": "denied", "count": 1},
                                                  {"kind": "policy", "name": "no-gpt4", "count": 1}]}
    assert Decimal(body["forecast"]["forecast_usd"]) >= Decimal(body["month_to_date_usd"])

    dev = api.get("dev-a", "/api/v1/overview").json()
    assert dev["last_24h_usd"] == "1.5"
    assert dev["top_movers"]["team"] == [body["top_movers"]["team"][0]]
    assert [m["name"] for m in dev["top_movers"]["agent"]] == ["alpha-bot"]
    assert dev["denials"] == {"total": 1, "by": [{"kind": "policy", "name": "no-gpt4", "count": 1}]}
    assert "beta" not in str(dev)
    assert api.get("view-a", "/api/v1/overview").json()["last_24h_usd"] == "1.5"

    bad = api.get("fin", "/api/v1/overview", timezone="Mars/Olympus_Mons")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "timezone"
    assert "Mars/Olympus_Mons" in bad.json()["error"]["message"]
    assert api.get("fin", "/api/v1/overview", zone="UTC").status_code == 400
    berlin = api.get("fin", "/api/v1/overview", timezone="Europe/Berlin").json()
    assert berlin["timezone"] == "Europe/Berlin" and berlin["last_24h_usd"] == "3.500000001"


@BOTH
def test_overview_local_days_and_seasonal_forecast(make_api: Callable[[str | None], Api],
                                                   store_url: Callable[[], str]) -> None:
    """40 days of spend before a fixed `now`: per-local-day series exact in UTC (day rollups),
    Berlin (hour rollups) and Kathmandu (+5:45, one query per day); the forecast is seasonal."""
    api = make_api(store_url())  # the harness's events are in the future of `now`: never counted
    now = datetime(2026, 6, 15, 13, 20, tzinfo=UTC)
    rng = random.Random(5)
    events = []
    for i in range(400):
        ts = now - timedelta(seconds=rng.randrange(40 * 86400))
        if i % 10 == 0:  # right around a local midnight of some zone
            ts = ts.replace(hour=rng.choice([21, 22, 23, 0]), minute=rng.choice([0, 14, 15, 16, 59]), second=0)
            ts = min(ts, now - timedelta(seconds=1))
        team = "alpha" if i % 3 else "beta"
        cost = (3 if ts.weekday() < 5 else 1) * rng.randrange(1_000_000, 90_000_000)
        events.append(_event(f"s{i}", ts, team, cost))
        api.app.store.record_event(events[-1])
    fin = _principal(api, "fin")
    for zone_name in ("UTC", "Europe/Berlin", "Asia/Kathmandu"):
        zone = ZoneInfo(zone_name)
        view = build_overview(api.app, fin, zone_name, now)
        local = now.astimezone(zone)
        for point in view["daily"]:
            day = datetime.fromisoformat(point["start"]).date()
            want = sum(e.cost_nano for e in events if e.ts.astimezone(zone).date() == day and e.ts < now)
            assert point["cost_usd"] == format_usd(want), (zone_name, day)
        assert len(view["daily"]) == local.day
        mtd = sum(e.cost_nano for e in events if e.ts.astimezone(zone).date().replace(day=1) ==
                  local.date().replace(day=1) and e.ts < now)
        assert view["month_to_date_usd"] == format_usd(mtd)
        forecast = view["forecast"]
        assert forecast["method"] == "seasonal" and forecast["history_days"] == 28
        assert Decimal(forecast["low_usd"]) <= Decimal(forecast["forecast_usd"]) <= Decimal(forecast["high_usd"])
        assert Decimal(forecast["forecast_usd"]) > Decimal(view["month_to_date_usd"])
    dev = build_overview(api.app, _principal(api, "dev-a"), "UTC", now)
    alpha = sum(e.cost_nano for e in events if e.context.team == "alpha" and now - timedelta(hours=24) <= e.ts)
    assert dev["last_24h_usd"] == format_usd(alpha)


@pytest.mark.parametrize("when", [datetime(2026, 12, 1, 0, 30, tzinfo=UTC), datetime(2026, 12, 1, 23, 30, tzinfo=UTC),
                                  datetime(2026, 12, 28, 23, 30, tzinfo=UTC),
                                  datetime(2027, 2, 28, 23, 59, tzinfo=UTC)],
                         ids=lambda d: d.strftime("%m-%dT%H"))
def test_overview_on_the_first_and_last_days_of_a_month(make_api: Callable[[str | None], Api], when: datetime) -> None:
    api = make_api(None)
    store = api.app.store
    store.record_event(_event("tiny-early", when - timedelta(minutes=20), "alpha", 3), [])
    store.record_event(_event("week-ago", when - timedelta(days=7), "beta", 1_000_000), [])
    for day in range(15, 30):  # weekdays only, three weeks back: a team idle at weekends
        ts = when - timedelta(days=day)
        if ts.weekday() < 5:
            store.record_event(_event(f"weekday-{day}", ts, "alpha", 2_000_000), [])
    for name, zone in (("fin", "Europe/Berlin"), ("dev-a", "America/New_York"), ("fin", None)):
        view = build_overview(api.app, _principal(api, name), zone, when)
        local = when.astimezone(ZoneInfo(zone or "UTC"))
        month_end = datetime.fromisoformat(view["forecast"]["month_end"])
        assert month_end > when and month_end.astimezone(ZoneInfo(zone or "UTC")).day == 1
        assert len(view["daily"]) == local.day
        assert Decimal(view["forecast"]["forecast_usd"]) >= Decimal(view["month_to_date_usd"])
