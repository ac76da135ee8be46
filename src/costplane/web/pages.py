"""Spend pages: overview, breakdown explorer (stacked time chart with drill-down), budgets,
cost per outcome and SLOs, and the decisions log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from costplane.money import parse_usd
from costplane.web.app import Page
from costplane.web.charts import Series, stacked_bars
from costplane.web.render import PREFIX

__all__ = ["DRILL", "FILTERS", "PAGES", "RANGES", "time_series"]

#: dimensions the explorer groups and filters by; every one is rolled up in the ledger
FILTERS: tuple[str, ...] = ("team", "project", "agent", "pipeline", "model", "provider", "tier", "user")
#: where a click on a group goes next: team -> its agents -> their runs -> the run's cost tree
DRILL: Mapping[str, str] = {"team": "agent", "project": "agent", "agent": "run", "pipeline": "run",
                            "model": "agent", "provider": "model", "tier": "team", "user": "agent"}
#: range name -> (bucket, number of buckets)
RANGES: Mapping[str, tuple[str, int]] = {"24h": ("hour", 24), "7d": ("day", 7), "30d": ("day", 30),
                                         "90d": ("day", 90)}
_TOP = 8


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _window(range_name: str, now: datetime) -> tuple[str, list[datetime]]:
    """Whole UTC buckets ending with the current one, so the ledger's rollups answer without a scan."""
    bucket, count = RANGES[range_name]
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    last = now.replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        last = last.replace(hour=0)
    return bucket, [last - step * (count - 1 - i) for i in range(count)]


def time_series(rows: Sequence[Mapping[str, Any]], by: str, buckets: Sequence[datetime]
                ) -> tuple[list[Series], list[tuple[str | None, int, int]]]:
    """Stacked series (top groups + other) and per-group totals (value, nano, events), largest first."""
    index = {b: i for i, b in enumerate(buckets)}
    per_group: dict[str | None, list[int]] = {}
    totals: dict[str | None, list[int]] = {}
    for row in rows:
        value = row["group"].get(by)
        nano = parse_usd(row["cost_usd"])
        acc = totals.setdefault(value, [0, 0])
        acc[0] += nano
        acc[1] += int(row["events"])
        when = datetime.fromisoformat(row["bucket"]) if row.get("bucket") else None
        if when is not None and when in index:
            per_group.setdefault(value, [0] * len(buckets))[index[when]] += nano
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1][0], kv[0] or ""))
    series = [Series(name or "(none)", per_group.get(name, [0] * len(buckets))) for name, _ in ranked[:_TOP]]
    if len(ranked) > _TOP:
        other = [0] * len(buckets)
        for name, _ in ranked[_TOP:]:
            for i, v in enumerate(per_group.get(name, [])):
                other[i] += v
        series.append(Series("other", other))
    return series, [(name, acc[0], acc[1]) for name, acc in ranked]


def _link(filters: Mapping[str, str], **changes: str | None) -> str:
    merged = {**filters, **changes}
    return f"{PREFIX}/breakdown?" + urlencode({k: v for k, v in merged.items() if v})


async def overview(page: Page) -> Response:
    now = datetime.now(UTC)
    _, hours = _window("24h", now)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    zone = getattr(page.zone, "key", None)  # today and month to date in the viewer's zone
    summary = await page.api("overview", {"timezone": zone} if zone else {}) if page.allows("overview") else {}
    burn = await page.api("spend", {"group_by": "team", "bucket": "hour", "since": _iso(hours[0])})
    by_team = await page.api("spend", {"group_by": "team", "since": _iso(month_start)})
    budgets = await page.api("budgets")
    series, _ = time_series(burn["rows"], "team", hours)
    teams = sorted(((r["group"].get("team"), parse_usd(r["cost_usd"]), r["events"]) for r in by_team["rows"]),
                   key=lambda t: -t[1])
    ranked = sorted(budgets["budgets"], key=lambda b: -Decimal(b.get("utilisation") or "0"))[:8]
    return page.render("overview.html", title="Overview", active="/", summary=summary,
                       chart=stacked_bars(hours, series, label="%H:%M", zone=page.zone), series=series, teams=teams,
                       budgets=[_bar(b) for b in ranked], drill=lambda team: _link({}, team=team, by="agent"))


async def breakdown(page: Page) -> Response:
    q = page.request.query_params
    by = q.get("by", "team")
    if by not in (*FILTERS, "run"):
        by = "team"
    range_name = q.get("range", "7d") if q.get("range") in RANGES else "7d"
    filters = {name: q[name] for name in FILTERS if q.get(name)}
    bucket, buckets = _window(range_name, datetime.now(UTC))
    data = await page.api("spend", {"group_by": by, "bucket": bucket, "since": _iso(buckets[0]), **filters})
    series, groups = time_series(data["rows"], by, buckets)
    total = sum(nano for _, nano, _ in groups)
    state = {**filters, "by": by, "range": range_name}
    rows = []
    for value, nano, events in groups:
        if value is None:
            href = None
        elif by == "run":
            href = f"{PREFIX}/runs/{value}"
        else:
            href = _link(state, **{by: value, "by": DRILL.get(by, "run")})
        share = f"{Decimal(nano * 100) / Decimal(total):.1f} %" if total else "–"
        rows.append({"value": value, "nano": nano, "events": events, "href": href, "share": share})
    crumbs = [(f"{name} = {value}", _link(state, **{name: None})) for name, value in filters.items()]
    return page.render("breakdown.html", title="Breakdown", active="/breakdown", by=by, range_name=range_name,
                       ranges=list(RANGES), dimensions=[*FILTERS, "run"], filters=filters, crumbs=crumbs,
                       chart=(stacked_bars(buckets, series, label="%H:%M", zone=page.zone) if bucket == "hour"
                              else stacked_bars(buckets, series, label="%d %b")),  # days are UTC days
                       series=series, rows=rows, total=total, state=state,
                       link_by=lambda d: _link(state, by=d))


def _bar(budget: Mapping[str, Any]) -> dict[str, Any]:
    """Widths of the spent and reserved parts of a budget bar, in whole percent of its limit."""
    limit = parse_usd(budget["limit_usd"]) if budget.get("limit_usd") else 0
    spent = parse_usd(budget["spent_usd"]) if budget.get("spent_usd") else 0
    reserved = parse_usd(budget["reserved_usd"]) if budget.get("reserved_usd") else 0
    spent_pct = min(100, spent * 100 // limit) if limit else 0
    reserved_pct = min(100 - spent_pct, reserved * 100 // limit) if limit else 0
    return {**budget, "spent_pct": spent_pct, "reserved_pct": reserved_pct, "over": bool(limit and spent >= limit)}


async def budgets_page(page: Page) -> Response:
    data = await page.api("budgets")
    return page.render("budgets.html", title="Budgets", active="/budgets", budgets=[_bar(b) for b in data["budgets"]])


async def outcomes_page(page: Page) -> Response:
    since = _iso(datetime.now(UTC) - timedelta(days=30))
    outcomes = await page.api("outcomes", {"group_by": "team,agent", "since": since}) if page.allows("outcomes") else {}
    slos = await page.api("slos") if page.allows("slos") else {}
    return page.render("outcomes.html", title="Outcomes & SLOs", active="/outcomes", outcomes=outcomes, slos=slos)


async def decisions_page(page: Page) -> Response:
    q = page.request.query_params
    query = {name: q[name] for name in ("effect", "policy", "key", "cursor") if q.get(name)}
    data = await page.api("decisions", {**query, "limit": "50"})
    base = {k: v for k, v in query.items() if k != "cursor"}
    following = data.get("next_cursor")
    more = f"{PREFIX}/decisions?" + urlencode({**base, "cursor": following}) if following else None
    return page.render("decisions.html", title="Decisions", active="/decisions", decisions=data["decisions"],
                       query=base, more=more)


PAGES: tuple[tuple[str, Any, tuple[str, ...]], ...] = (
    ("/", overview, ("GET",)),
    ("/breakdown", breakdown, ("GET",)),
    ("/budgets", budgets_page, ("GET",)),
    ("/outcomes", outcomes_page, ("GET",)),
    ("/decisions", decisions_page, ("GET",)),
)
