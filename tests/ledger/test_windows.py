"""Calendar windows at DST changes: periods tile time exactly, whatever the zone does at midnight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from costplane.ledger.windows import Window

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
