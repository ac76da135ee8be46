"""Days in the report's zone: which day a billed period falls on, and the ledger window of a day."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from costplane.reconcile.types import ReconcileError

__all__ = ["DayClock"]


class DayClock:
    """Cuts time into calendar days of one IANA zone (UTC by default)."""

    def __init__(self, zone: str = "UTC") -> None:
        self.zone_name = zone
        self.zone = ZoneInfo(zone)

    def day_of(self, start: datetime, end: datetime | None, where: str) -> date:
        """The day a billed period [start, end) lies in. A period that spans two days of the zone (a
        UTC daily bucket read in another zone) cannot be split honestly: that is an error naming it."""
        day = start.astimezone(self.zone).date()
        if end is not None and end > start:
            last = (end - timedelta(microseconds=1)).astimezone(self.zone).date()
            if last != day:
                raise ReconcileError(
                    f"{where}: the period {start.isoformat()} – {end.isoformat()} spans two days in "
                    f"{self.zone_name}; daily bills are cut in UTC — reconcile them with --timezone UTC, or "
                    "download hourly buckets (bucket_width=1h) where the API offers them")
        return day

    def window(self, day: date) -> tuple[datetime, datetime]:
        """[local midnight, next local midnight) of `day`, in UTC."""
        start = datetime.combine(day, time(0), tzinfo=self.zone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone).astimezone(UTC)
        return start, end
