"""Calendar windows at DST changes: periods tile time exactly, whatever the zone does at midnight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from costplane.ledger.windows import PeriodMemo, Window

ZONES = ("UTC", "Europe/Berlin", "America/Havana", "America/Santiago", "Asia/Kathmandu", "Australia/Lord_Howe")


def test_period_end_of_a_day_whose_midnight_is_in_a_dst_gap() -> None:
    # Havana starts DST at local midnight: 2025-03-09 00:00 does not exist, the day opens at 01:00 CDT
    day = Window("calendar", calendar="day", timezone="America/Havana")
    at = datetime(2025, 3, 9, 12, tzinfo=UTC)
    assert day.period_start(at) == datetime(2025, 3, 9, 5, tzinfo=UTC)
    assert day.period_end(at) == datetime(2025, 3, 10, 4, tzinfo=UTC)  # midnight CDT (UTC-4), not 01:00


@pytest.mark.parametrize("calendar", ["day", "week", "month"])
@pytest.mark.parametrize("zone", ZONES)
def test_periods_tile_time(zone: str, calendar: str) -> None:
    """Each period ends where the next one starts, contains the instants it is asked for, and a
    period's end is a local midnight (or the end of a gap there) of the right local date."""
    window = Window("calendar", calendar=calendar, timezone=zone)
    at = datetime(2024, 1, 1, tzinfo=UTC)
    step = timedelta(hours=1) if calendar == "day" else timedelta(hours=7)
    while at < datetime(2026, 1, 1, tzinfo=UTC):
        start, end = window.period_start(at), window.period_end(at)
        assert end is not None
        assert start <= at < end, (zone, calendar, at)
        assert window.period_start(end) == end, (zone, calendar, at)  # the next period opens at the end
        at += step


@pytest.mark.parametrize("window", [
    Window("calendar", calendar="day", timezone="Europe/Berlin"),
    Window("calendar", calendar="week", timezone="America/Sao_Paulo"),
    Window("calendar", calendar="month", timezone="Australia/Lord_Howe"),
    Window("calendar", calendar="day", timezone="America/Havana"),
    Window("rolling", seconds=3600),
    Window.lifetime(),
])
def test_the_period_memo_answers_exactly_as_the_window_across_boundaries_and_dst(window: Window) -> None:
    memo = PeriodMemo()
    start = datetime(2026, 3, 1, tzinfo=UTC)
    instants = [start + timedelta(minutes=17 * i) for i in range(0, 20_000)]  # ~8 months, DST both ways
    instants += [datetime(2026, 10, 25, 0, 59, 59, 999_999, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC),
                 datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC), datetime(2026, 3, 29, 1, tzinfo=UTC)]
    for at in instants + instants[::-1]:  # forwards, then backwards into periods seen before
        assert memo.bounds(window, at) == window.bounds(at), at
