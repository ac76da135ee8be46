"""Validation of `kind: Budget` documents into `BudgetSpec`."""

from __future__ import annotations

import difflib
import zoneinfo
from dataclasses import dataclass
from functools import lru_cache

from costplane.attribution.context import DIMENSIONS
from costplane.ledger.windows import CALENDAR_UNITS, Window, WindowError, parse_duration
from costplane.money import MoneyError, parse_usd
from costplane.policy.celexpr import CompiledExpr
from costplane.policy.checks import DocChecker, check_expression, check_name, describe
from costplane.policy.types import BudgetSpec
from costplane.policy.yamlsource import YMap, YNode, YScalar

__all__ = ["BUDGET_KEYS", "PER_DIMENSIONS", "LoadedBudget", "validate_budget"]

BUDGET_KEYS = (
    "kind", "name", "description", "scope", "amount", "max_calls", "max_concurrent",
    "per", "window", "enforcement", "alerts", "on_exceed", "fail",
)  # fmt: skip
PER_DIMENSIONS: tuple[str, ...] = (*DIMENSIONS, "key", "model")
_WINDOW_SHAPE = "lifetime, {rolling: 1h} or {calendar: day|week|month, timezone: Europe/Berlin}"


@dataclass(frozen=True, slots=True)
class LoadedBudget:
    spec: BudgetSpec
    scope: CompiledExpr
    name_line: int
    scope_line: int = 0  # the line of `scope` (the document's when omitted)


@lru_cache(maxsize=1)
def _zones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def _check_timezone(chk: DocChecker, node: YNode | None) -> str | None:
    zone = chk.string(node, "window.timezone", what="an IANA time zone such as Europe/Berlin")
    if zone is None or node is None:
        return None
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(zone, _zones(), n=1)
        example = close[0] if close else "UTC"
        chk.issue(node.line, "window.timezone", f"unknown IANA time zone {zone!r}; expected e.g. {example}")
        return None
    return zone


def _check_window(chk: DocChecker, node: YNode | None) -> Window | None:
    if node is None:
        return Window.lifetime()
    if isinstance(node, YScalar):
        if node.value == "lifetime":
            return Window.lifetime()
        chk.issue(node.line, "window", f"expected {_WINDOW_SHAPE}, got {describe(node)}")
        return None
    win = chk.mapping(node, "window", what=_WINDOW_SHAPE)
    if win is None:
        return None
    chk.keys(win, "window", ("rolling", "calendar", "timezone"))
    rolling, calendar = win.get("rolling"), win.get("calendar")
    if (rolling is None) == (calendar is None):
        chk.issue(win.line, "window", f"give exactly one of rolling or calendar: {_WINDOW_SHAPE}")
        return None
    if rolling is not None:
        if win.get("timezone") is not None:
            chk.issue(
                win.entries["timezone"].key_line, "window.timezone", "only calendar windows take a timezone"
            )
        text = rolling.text if isinstance(rolling, YScalar) and not isinstance(rolling.value, bool) else None
        try:
            seconds = parse_duration(text) if text is not None else None
        except WindowError as exc:
            chk.issue(rolling.line, "window.rolling", str(exc))
            return None
        if seconds is None:
            chk.issue(
                rolling.line, "window.rolling", f"expected a duration such as 1h, got {describe(rolling)}"
            )
            return None
        return Window("rolling", seconds=seconds)
    unit = chk.string(calendar, "window.calendar", choices=CALENDAR_UNITS)
    tz_node = win.get("timezone")
    if tz_node is None:
        chk.issue(
            win.line,
            "window.timezone",
            "a calendar window needs an explicit IANA time zone, e.g. timezone: Europe/Berlin (or UTC)",
        )
        return None
    zone = _check_timezone(chk, tz_node)
    if unit is None or zone is None:
        return None
    try:
        return Window("calendar", calendar=unit, timezone=zone)
    except WindowError as exc:  # pragma: no cover - checked above
        chk.issue(win.line, "window", str(exc))
        return None


def _check_amount(chk: DocChecker, node: YNode | None) -> int | None:
    if node is None:
        return None
    if not isinstance(node, YScalar) or isinstance(node.value, bool) or node.value is None:
        chk.issue(node.line, "amount", f"expected an amount such as '500 USD' or 0.05, got {describe(node)}")
        return None
    try:
        nano = parse_usd(node.text)  # the source text: `0.1` is exactly 0.1 USD
    except MoneyError as exc:
        chk.issue(node.line, "amount", str(exc))
        return None
    if nano <= 0:
        chk.issue(node.line, "amount", f"expected an amount greater than 0 USD, got {node.text!r}")
        return None
    return nano


def _check_on_exceed(chk: DocChecker, node: YNode | None) -> tuple[str, str | None] | None:
    if node is None:
        return "deny", None
    if isinstance(node, YScalar) and node.value == "deny":
        return "deny", None
    if isinstance(node, YMap):
        chk.keys(node, "on_exceed", ("route",), ("route",))
        model = chk.string(node.get("route"), "on_exceed.route", what="a model name")
        if model is not None and set(node.entries) == {"route"}:
            return "route", model
        return None
    chk.issue(node.line, "on_exceed", f"expected deny or {{route: MODEL}}, got {describe(node)}")
    return None


def _check_alerts(chk: DocChecker, node: YNode | None) -> tuple[int, ...] | None:
    seq = chk.sequence(node, "alerts", what="a list of percentages such as [50, 80, 100]")
    if seq is None:
        return () if node is None else None
    out: list[int] = []
    for i, item in enumerate(seq.items):
        value = chk.integer(item, f"alerts[{i}]", minimum=1, maximum=1000, what="a whole percentage 1..1000")
        if value is None:
            return None
        if value in out:
            chk.issue(item.line, f"alerts[{i}]", f"{value} is listed twice")
            return None
        out.append(value)
    return tuple(sorted(out))


def validate_budget(chk: DocChecker, doc: YMap) -> LoadedBudget | None:
    before = len(chk.issues)
    chk.keys(doc, "", BUDGET_KEYS, ("name",))
    name = check_name(chk, doc)
    description = chk.string(doc.get("description"), "description", allow_empty=True)
    scope = check_expression(chk, doc.get("scope"), "scope")
    amount = _check_amount(chk, doc.get("amount"))
    limit = "an integer > 0"
    max_calls = chk.integer(doc.get("max_calls"), "max_calls", minimum=1, what=limit)
    max_concurrent = chk.integer(doc.get("max_concurrent"), "max_concurrent", minimum=1, what=limit)
    if all(doc.get(k) is None for k in ("amount", "max_calls", "max_concurrent")):
        chk.issue(doc.line, "amount", "a budget needs at least one of amount, max_calls, max_concurrent")
    per_node = doc.get("per")
    per = chk.string_list(per_node, "per", choices=PER_DIMENSIONS, what="a list of dimensions such as [run]")
    window = _check_window(chk, doc.get("window"))
    enforcement = chk.string(doc.get("enforcement"), "enforcement", choices=("hard", "soft"))
    alerts = _check_alerts(chk, doc.get("alerts"))
    on_exceed = _check_on_exceed(chk, doc.get("on_exceed"))
    fail = chk.string(doc.get("fail"), "fail", choices=("closed", "open"))
    if len(chk.issues) != before or None in (name, scope, window, alerts, on_exceed):
        return None
    if name is None or scope is None or window is None or alerts is None or on_exceed is None:
        return None  # for the type checker; covered by the line above
    spec = BudgetSpec(
        name=name,
        scope=scope.source,
        window=window,
        amount_nano=amount,
        max_calls=max_calls,
        max_concurrent=max_concurrent,
        per=tuple(per or ()),
        hard=(enforcement or "hard") == "hard",
        alerts=alerts,
        on_exceed=on_exceed[0],
        route_to=on_exceed[1],
        fail_open=fail == "open",
        description=description or "",
        location=chk.location(doc.line),
    )
    name_node, scope_node = doc.get("name"), doc.get("scope")
    return LoadedBudget(spec, scope, name_node.line if name_node else doc.line,
                        scope_node.line if scope_node is not None else doc.line)
