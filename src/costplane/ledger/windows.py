"""Budget windows: lifetime, rolling duration, or a calendar period in a named IANA zone.

A window maps an instant to (window_start, bucket): the counter row a claim
lands in and the first bucket that still counts. Calendar windows have one
bucket per period; rolling windows are bucketed in 1/60ths of their length
(at least one second), so a rolling window is exact to one bucket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["MAX_DURATION_SECONDS", "PeriodMemo", "Window", "WindowError", "parse_duration"]

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
CALENDAR_UNITS = ("day", "week", "month")
#: the longest duration accepted anywhere (TTLs, extensions, rolling windows, settings): 3650 days
MAX_DURATION_SECONDS = 3650 * 86400


class WindowError(ValueError):
    pass


def parse_duration(text: str) -> int:
    """'30m' -> 1800 seconds. Units: s, m, h, d, w; at most MAX_DURATION_SECONDS (3650d)."""
    shown = str(text) if len(str(text)) <= 40 else str(text)[:40] + "…"
    match = _DURATION.match(str(text))
    if match is None:
        raise WindowError(f"expected a duration such as '30m', '4h' or '7d', got {shown!r}")
    digits = match.group(1).lstrip("0") or "0"
    seconds = int(digits) * _UNIT_SECONDS[match.group(2)] if len(digits) <= 12 else MAX_DURATION_SECONDS + 1
    if seconds <= 0:
        raise WindowError(f"a duration must be positive, got {shown!r}")
    if seconds > MAX_DURATION_SECONDS:
        raise WindowError(f"a duration must be at most {MAX_DURATION_SECONDS // 86400}d "
                          f"({MAX_DURATION_SECONDS} seconds), got {shown!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class Window:
    kind: str  # lifetime | rolling | calendar
    seconds: int = 0  # rolling length
    calendar: str = ""  # day | week | month
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if self.kind not in ("lifetime", "rolling", "calendar"):
            raise WindowError(f"window kind must be lifetime, rolling or calendar, got {self.kind!r}")
        if self.kind == "rolling" and self.seconds <= 0:
            raise WindowError("a rolling window needs a positive duration")
        if self.kind == "calendar":
            if self.calendar not in CALENDAR_UNITS:
                raise WindowError(f"calendar must be one of day, week, month, got {self.calendar!r}")
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise WindowError(f"unknown IANA time zone {self.timezone!r}") from exc

    @classmethod
    def lifetime(cls) -> Window:
        return cls("lifetime")

    @property
    def bucket_seconds(self) -> int:
        return max(1, self.seconds // 60) if self.kind == "rolling" else 0

    def bounds(self, at: datetime) -> tuple[int, int]:
        """(window_start, bucket) as epoch seconds for the instant `at` (aware)."""
        if self.kind == "lifetime":
            return 0, 0
        if self.kind == "rolling":
            size = self.bucket_seconds
            now = int(at.timestamp())
            bucket = now - now % size
            return bucket - self.seconds + size, bucket
        start = int(self.period_start(at).timestamp())
        return start, start

    def _local_start(self, at: datetime) -> datetime:
        """Naive local midnight that opens the calendar period containing `at` (it may not exist on
        the clock, e.g. when DST starts at midnight: the period then opens at the gap's end)."""
        local = at.astimezone(ZoneInfo(self.timezone))
        day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
        if self.calendar == "week":
            day -= timedelta(days=day.weekday())
        elif self.calendar == "month":
            day = day.replace(day=1)
        return day

    def _utc(self, local: datetime) -> datetime:
        # a wall time in a DST gap reads with the offset before the gap (fold 0): the gap's end instant
        return local.replace(tzinfo=ZoneInfo(self.timezone)).astimezone(UTC)

    def period_start(self, at: datetime) -> datetime:
        """Start of the calendar period containing `at`, in UTC."""
        return self._utc(self._local_start(at))

    def period_end(self, at: datetime) -> datetime | None:
        """End of the calendar period containing `at` (UTC), None for other windows. Computed from the
        period's local date, not from its start instant read back on the clock (which is 01:00, not
        midnight, on a day whose midnight falls in a DST gap)."""
        if self.kind != "calendar":
            return None
        start_local = self._local_start(at)
        if self.calendar == "day":
            end = start_local + timedelta(days=1)
        elif self.calendar == "week":
            end = start_local + timedelta(days=7)
        else:
            end = (start_local.replace(day=28) + timedelta(days=4)).replace(day=1)
        return self._utc(end)

    def describe(self) -> str:
        if self.kind == "lifetime":
            return "lifetime"
        if self.kind == "rolling":
            return f"rolling {self.seconds}s"
        return f"calendar {self.calendar} ({self.timezone})"


class PeriodMemo:
    """`Window.bounds` for a stream of instants: a calendar window's period (its start and end, what
    the zone conversions cost) is computed once and reused while the instants stay inside it. Exact:
    the answer is the window's own for any instant in [start, end). Other windows are not memoised
    (their bounds are integer arithmetic). Thread-safe (one dict; a lost race recomputes)."""

    LIMIT = 4096  # windows remembered (bundle reloads make new ones); past it, the memo starts over

    def __init__(self) -> None:
        self._periods: dict[Window, tuple[float, float, tuple[int, int]]] = {}

    def bounds(self, window: Window, at: datetime) -> tuple[int, int]:
        if window.kind != "calendar":
            return window.bounds(at)
        instant = at.timestamp()
        known = self._periods.get(window)
        if known is not None and known[0] <= instant < known[1]:
            return known[2]
        start, end = window.period_start(at), window.period_end(at)
        if end is None:  # not a calendar period after all
            return window.bounds(at)
        value = (int(start.timestamp()), int(start.timestamp()))
        if len(self._periods) >= self.LIMIT:
            self._periods.clear()
        self._periods[window] = (start.timestamp(), end.timestamp(), value)
        return value
