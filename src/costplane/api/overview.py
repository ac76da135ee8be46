"""`GET /api/v1/overview`: the dashboard's landing figures in one call, scoped to the caller.

Today's and month-to-date spend (local days of `timezone`), the hourly burn of the last 24 h,
the month's daily series, a forecast to the end of the month, the teams and agents whose spend
moved most (last 24 h against the 24 h before), denials of the last 24 h by what denied, and
the active bundle revision. Every spend figure comes from `scoped_spend` (the same scoping as
`/api/v1/spend`), which `Store.spend` answers from the v8 rollups — exactly.

Local days: when every local midnight of the range falls on a UTC midnight (UTC, London in
winter) the series is one query by day; otherwise one `Store.spend_windows` statement with a
window per local day, each answered from a whole UTC day and at most half a day of hourly
rollup rows at each edge (`rollups.plan`).

Forecast: `optimize.seasonal.fit_seasonal` (trend × weekday profile) on up to `LOOKBACK_DAYS`
complete local days before today, for the rest of today and every day until the month ends;
with fewer than `MIN_DAYS` days of history, a linear run rate of the month so far. The money
already spent is exact; only the remainder is estimated (rounded to whole nano-USD).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.concurrency import run_in_threadpool

from costplane.api.errors import ApiError
from costplane.api.principal import Principal
from costplane.api.spend import scoped_spend
from costplane.api.table import Call, Param
from costplane.app import Application
from costplane.ledger.codec import to_us
from costplane.ledger.store import SpendRow
from costplane.money import format_usd
from costplane.optimize.seasonal import MIN_DAYS, fit_seasonal

__all__ = ["LOOKBACK_DAYS", "OVERVIEW_PARAMS", "OVERVIEW_SCHEMA", "build_overview", "overview_handler"]

LOOKBACK_DAYS = 28  # complete days the forecast learns from (four of each weekday)
_MOVERS = 5
_DAY = 86_400_000_000

OVERVIEW_PARAMS: tuple[Param, ...] = (
    Param("timezone", "string", "IANA time zone of 'today' and 'month to date' (default UTC)"),
)

_MONEY = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "description": "exact decimal USD"}
_POINT = {"type": "object", "properties": {"start": {"type": "string"}, "cost_usd": _MONEY}}
_MOVER = {"type": "object", "properties": {"name": {"type": ["string", "null"]}, "last_24h_usd": _MONEY,
                                           "previous_24h_usd": _MONEY, "delta_usd": _MONEY}}
OVERVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["timezone", "now", "today_usd", "month_to_date_usd", "last_24h_usd", "burn_rate", "daily",
                 "forecast", "top_movers", "denials", "bundle_revision"],
    "properties": {
        "timezone": {"type": "string"}, "now": {"type": "string", "format": "date-time"},
        "today_usd": _MONEY, "month_to_date_usd": _MONEY, "last_24h_usd": _MONEY,
        "burn_rate": {"type": "object", "description": "spend per UTC hour, the last 24 hours (the last one "
                      "partial)", "properties": {"per_hour_usd": _MONEY, "hours": {"type": "array",
                                                                                   "items": _POINT}}},
        "daily": {"type": "array", "items": _POINT, "description": "spend per local day, month to date"},
        "forecast": {"type": "object", "properties": {
            "month_end": {"type": "string", "format": "date-time"}, "method": {"type": "string",
                                                                               "enum": ["seasonal", "linear"]},
            "forecast_usd": _MONEY, "low_usd": {**_MONEY, "type": ["string", "null"]},
            "high_usd": {**_MONEY, "type": ["string", "null"]}, "history_days": {"type": "integer"}}},
        "top_movers": {"type": "object", "properties": {"team": {"type": "array", "items": _MOVER},
                                                        "agent": {"type": "array", "items": _MOVER}}},
        "denials": {"type": "object", "properties": {"total": {"type": "integer"}, "by": {"type": "array", "items": {
            "type": "object", "properties": {"kind": {"type": "string", "enum": ["budget", "policy", "guard"]},
                                             "name": {"type": "string"}, "count": {"type": "integer"}}}}}},
        "bundle_revision": {"type": "string"},
    },
}


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ApiError(400, "invalid_parameter", f"timezone: unknown IANA time zone {name!r} (e.g. UTC, "
                       "Europe/Berlin, America/New_York)", "timezone") from None


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, zone).astimezone(UTC)


class _Reader:
    """The caller-scoped spend queries of one overview."""

    def __init__(self, application: Application, principal: Principal) -> None:
        self.store = application.store
        self.principal = principal

    def rows(self, *, group_by: Sequence[str] = (), since: datetime | None = None, until: datetime | None = None,
             bucket: str | None = None) -> list[SpendRow]:
        return scoped_spend(self.store, self.principal, group_by=group_by, where={}, since=since, until=until,
                            bucket=bucket)

    def windows(self, windows: Sequence[tuple[datetime, datetime]], name: str | None = None) -> list[dict[Any, int]]:
        """Cost per value of `name` (or under None) in each window, in one round trip — scoped with
        the same rule as `scoped_spend`: group by team and project too, keep what `may_read`."""
        scoped = self.principal.scope is not None
        inner = list(dict.fromkeys([*([name] if name else []), *(["team", "project"] if scoped else [])]))
        out: list[dict[Any, int]] = []
        for rows in self.store.spend_windows(windows, group_by=inner):
            sums: dict[Any, int] = {}
            for r in rows:
                if not scoped or self.principal.may_read(r.group.get("team"), r.group.get("project")):
                    key = r.group.get(name) if name else None
                    sums[key] = sums.get(key, 0) + r.cost_nano
            out.append(sums)
        return out

    def daily(self, first: date, last: date, zone: ZoneInfo, now: datetime) -> list[int]:
        """Spend per local day from `first` to `last` (today, cut at `now`) inclusive."""
        starts = [_midnight(first + timedelta(days=i), zone) for i in range((last - first).days + 1)]
        if any(to_us(s) % _DAY for s in starts):  # local days are not UTC days: one window per day
            return [sum(w.values()) for w in self.windows(list(zip(starts, [*starts[1:], now], strict=True)))]
        out = [0] * len(starts)
        for row in self.rows(since=starts[0], until=now, bucket="day"):
            assert row.bucket is not None
            index = (row.bucket.astimezone(zone).date() - first).days
            if 0 <= index < len(out):
                out[index] += row.cost_nano
        return out


def _forecast(history: list[int], first: date, spent: int, now: datetime, zone: ZoneInfo, month_start: datetime,
              month_end: datetime) -> dict[str, Any]:
    """Spend to the end of the month: exact spend so far + the model's remainder."""
    today = now.astimezone(zone).date()
    model = fit_seasonal([float(v) for v in history], first.weekday())
    out: dict[str, Any] = {"month_end": month_end.isoformat(), "history_days": len(history)}
    if model is None:  # too little history: the month's run rate (integer arithmetic, exact inputs)
        elapsed, length = to_us(now) - to_us(month_start), to_us(month_end) - to_us(month_start)
        point = spent * length // elapsed if elapsed > 0 else spent
        return {**out, "method": "linear", "forecast_usd": format_usd(point), "low_usd": None, "high_usd": None}
    days: list[tuple[int, float]] = []  # (day index from `first`, share of it still to come)
    day = today
    while (start := _midnight(day, zone)) < month_end:
        end = _midnight(day + timedelta(days=1), zone)
        share = (end - max(start, now)).total_seconds() / (end - start).total_seconds()
        days.append(((day - first).days, max(0.0, share)))
        day += timedelta(days=1)
    mid, low, high = model.total(days)
    return {**out, "method": "seasonal", "forecast_usd": format_usd(spent + round(mid)),
            "low_usd": format_usd(spent + round(low)), "high_usd": format_usd(spent + round(high))}


def _movers(reader: _Reader, name: str, now: datetime) -> tuple[list[dict[str, Any]], int]:
    """The top movers by `name`, and the total of the last 24 h (every group, so exact)."""
    day = timedelta(hours=24)
    last, before = reader.windows([(now - day, now), (now - 2 * day, now - day)], name)
    moved = [(key, last.get(key, 0), before.get(key, 0)) for key in {*last, *before}]
    moved.sort(key=lambda m: (-abs(m[1] - m[2]), m[0] is None, m[0] or ""))
    top = [{"name": key, "last_24h_usd": format_usd(a), "previous_24h_usd": format_usd(b),
            "delta_usd": format_usd(a - b)} for key, a, b in [m for m in moved if m[1] != m[2]][:_MOVERS]]
    return top, sum(last.values())


def build_overview(application: Application, principal: Principal, timezone: str | None,
                   now: datetime) -> dict[str, Any]:
    """The overview as of `now` (blocking: runs the store queries)."""
    zone = _zone(timezone)
    reader = _Reader(application, principal)
    local = now.astimezone(zone)
    today = local.date()
    month_first = today.replace(day=1)
    month_start = _midnight(month_first, zone)
    month_end = _midnight((month_first + timedelta(days=32)).replace(day=1), zone)
    first = min(month_first, today - timedelta(days=LOOKBACK_DAYS))
    series = reader.daily(first, today, zone, now)
    mtd = series[(month_first - first).days:]
    # the forecast learns from complete days only, starting at the first day with spend
    history = series[:-1][-LOOKBACK_DAYS:]
    history_first = today - timedelta(days=len(history))
    while history and not history[0]:
        history, history_first = history[1:], history_first + timedelta(days=1)

    hour0 = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    hourly = {r.bucket: r.cost_nano for r in reader.rows(since=hour0, until=now, bucket="hour")}
    hours = [hour0 + timedelta(hours=i) for i in range(24)]
    teams, last_24h = _movers(reader, "team", now)
    agents, _ = _movers(reader, "agent", now)

    denials = application.store.denial_counts(since=now - timedelta(hours=24), until=now, scope=principal.scope)
    return {
        "timezone": zone.key, "now": now.isoformat(),
        "today_usd": format_usd(series[-1]), "month_to_date_usd": format_usd(sum(mtd)),
        "last_24h_usd": format_usd(last_24h),
        "burn_rate": {"per_hour_usd": format_usd(last_24h // 24),
                      "hours": [{"start": h.isoformat(), "cost_usd": format_usd(hourly.get(h, 0))} for h in hours]},
        "daily": [{"start": (month_first + timedelta(days=i)).isoformat(), "cost_usd": format_usd(v)}
                  for i, v in enumerate(mtd)],
        "forecast": _forecast(history if len(history) >= MIN_DAYS else [], history_first, sum(mtd), now, zone,
                              month_start, month_end),
        "top_movers": {"team": teams, "agent": agents},
        "denials": {"total": sum(denials.values()), "by": [
            {"kind": kind, "name": name, "count": n}
            for (kind, name), n in sorted(denials.items(), key=lambda item: (-item[1], item[0]))]},
        "bundle_revision": application.bundle.revision,
    }


def overview_handler(application: Application) -> Any:
    async def handler(call: Call) -> dict[str, Any]:
        zone = call.params.get("timezone")
        _zone(zone)  # a bad zone is a 400 before any store work
        now = datetime.now(UTC)
        return await run_in_threadpool(build_overview, application, call.principal, zone, now)

    return handler
