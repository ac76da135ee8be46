"""Page rendering: one Jinja environment (autoescaped) over the package's templates, and the context
every page shares (navigation, the caller, the active bundle revision)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, PackageLoader, Undefined, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from costplane.api.principal import Principal
from costplane.web.charts import color, display_usd
from costplane.web.timefmt import TZ_COOKIE, time_tag, viewer_zone

__all__ = ["NAV", "PREFIX", "Renderer"]

PREFIX = "/ui"
NAV: tuple[tuple[str, str], ...] = (
    ("/", "Overview"), ("/breakdown", "Breakdown"), ("/budgets", "Budgets"), ("/outcomes", "Outcomes & SLOs"),
    ("/environments", "Environments"), ("/runs", "Runs"), ("/decisions", "Decisions"),
)


def _usd(value: Any) -> str:
    """Display filter: nano-USD ints or the API's exact decimal strings, as $1,234.56."""
    if value is None or value == "" or isinstance(value, Undefined):
        return "–"
    if isinstance(value, int):
        return display_usd(value)
    from costplane.money import parse_usd

    return display_usd(parse_usd(str(value)))


@pass_context
def _when(context: Context, value: Any, seconds: bool = False) -> Markup:
    """Display filter: an instant (datetime or ISO text) as "7 Dec 2026, 14:05 CET" in the viewer's zone."""
    return time_tag(None if isinstance(value, Undefined) else value, context.get("zone") or viewer_zone(None),
                    seconds=seconds)


def _duration(value: Any) -> str:
    """Display filter: seconds as 2h, 90m, 1d 12h (whole units, largest first)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return "–"
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if value >= size or (unit == "s" and not parts):
            parts.append(f"{value // size}{unit}")
            value %= size
    return " ".join(parts[:2])


class Renderer:
    def __init__(self) -> None:
        self._env = Environment(loader=PackageLoader("costplane.web", "templates"),
                                autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
        self._env.filters["usd"] = _usd
        self._env.filters["when"] = _when
        self._env.filters["duration"] = _duration
        self._env.globals["color"] = color
        self._env.globals["markup"] = Markup  # for the server-drawn SVG charts only

    def page(self, request: Request, template: str, *, principal: Principal, revision: str, title: str,
             active: str, values: Mapping[str, Any], status: int = 200, error: str | None = None) -> HTMLResponse:
        context = {"title": title, "static": f"{PREFIX}/static", "prefix": PREFIX, "nav": NAV, "active": active,
                   "principal": principal, "revision": revision, "error": error,
                   "zone": viewer_zone(request.cookies.get(TZ_COOKIE)),
                   "self_url": str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
                   **values}
        return HTMLResponse(self._env.get_template(template).render(context), status_code=status)

    def bare(self, template: str, values: Mapping[str, Any], status: int = 200) -> HTMLResponse:
        context = {"static": f"{PREFIX}/static", "prefix": PREFIX, "zone": viewer_zone(None), **values}
        return HTMLResponse(self._env.get_template(template).render(context), status_code=status)
