"""Timestamps as a person reads them, in the viewer's time zone.

The browser tells the server its IANA zone once (app.js stores it in the `costplane_tz` cookie,
from `Intl.DateTimeFormat().resolvedOptions().timeZone`); pages then render every instant as
"7 Dec 2026, 14:05 CET" in that zone, inside a `<time datetime="…">` element carrying the exact
UTC instant. Until the zone is known (first page, no script) the same format is shown in UTC,
and the script rewrites it in place. An unknown or malformed zone falls back to UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup, escape

__all__ = ["TZ_COOKIE", "human", "parse_instant", "time_tag", "viewer_zone"]

TZ_COOKIE = "costplane_tz"
_ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,3}$")


def viewer_zone(name: str | None) -> tzinfo:
    """The zone named by the viewer's cookie (URL-encoded by the script), UTC when absent, malformed or unknown."""
    name = unquote(name) if name else name
    if not name or len(name) > 64 or not _ZONE_NAME.match(name):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return UTC


def parse_instant(value: object) -> datetime | None:
    """An aware datetime from a datetime or an ISO 8601 string (naive is read as UTC); None otherwise."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str) and value:
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def human(when: datetime, zone: tzinfo, *, seconds: bool = False) -> str:
    """'7 Dec 2026, 14:05 CET' (the zone's abbreviation, or its UTC offset when it has none)."""
    local = when.astimezone(zone)
    name = local.strftime("%Z") or local.strftime("%z")
    clock = local.strftime("%H:%M:%S" if seconds else "%H:%M")
    return f"{local.day} {local.strftime('%b %Y')}, {clock} {name}"


def time_tag(value: object, zone: tzinfo, *, empty: str = "—", seconds: bool = False) -> Markup:
    """A `<time>` element with the exact instant for the script and the human text in `zone`."""
    when = parse_instant(value)
    if when is None:
        return Markup(escape(empty if value in (None, "") else str(value)))
    exact = when.astimezone(UTC).isoformat().replace("+00:00", "Z")
    flag = ' data-seconds="1"' if seconds else ""
    return Markup(f'<time datetime="{escape(exact)}" data-local{flag}>{escape(human(when, zone, seconds=seconds))}'
                  "</time>")
