"""`reconcile:` in costplane.yaml — drift thresholds, the report's zone and the name mappings.

```yaml
reconcile:
  drift_threshold_pct: 5          # a line alerts when its drift passes every threshold set
  drift_threshold_usd: "1.00"     # exact USD (a string, or an integer)
  timezone: UTC                   # IANA zone the days are cut in
  projects: {proj_abc: search, wrkspc_01AbC: support, default: null}   # bill project/workspace -> project
  models: {gpt-4o-realtime-preview: gpt-4o-realtime}                    # bill model -> ledger model
  providers: {openai-eu: openai}                                        # ledger provider -> bill provider
```

`parse_reconcile` never raises: it returns the settings and the (field, message) problems, which the
configuration loader reports with file:line like every other field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from costplane.reconcile.normalize import normalize_model

__all__ = ["NO_PROJECT", "ReconcileSettings", "parse_reconcile"]

#: a `projects:` value meaning "ledger events with no project"
NO_PROJECT = ""
_KEYS = ("drift_threshold_pct", "drift_threshold_usd", "timezone", "projects", "models", "providers")


@dataclass(frozen=True, slots=True)
class ReconcileSettings:
    drift_threshold_pct: Decimal | None = Decimal(5)
    drift_threshold_usd: Decimal | None = Decimal("1.00")
    timezone: str = "UTC"
    projects: Mapping[str, str] = field(default_factory=dict)  # bill id -> costplane project ("" = none)
    models: Mapping[str, str] = field(default_factory=dict)
    providers: Mapping[str, str] = field(default_factory=dict)

    def with_overrides(self, *, pct: Decimal | None = None, usd: Decimal | None = None,
                       timezone: str | None = None, projects: Mapping[str, str] | None = None) -> ReconcileSettings:
        """These settings with the command line's values on top (None = keep)."""
        out = self
        if pct is not None:
            out = replace(out, drift_threshold_pct=pct)
        if usd is not None:
            out = replace(out, drift_threshold_usd=usd)
        if timezone is not None:
            out = replace(out, timezone=timezone)
        if projects:
            out = replace(out, projects={**out.projects, **projects})
        return out


def parse_decimal(value: Any, *, allow_none: bool = True) -> Decimal | None:
    """A non-negative exact number from YAML/CLI text or an int; ValueError otherwise (floats refused:
    YAML `5.5` should be quoted, like every amount in costplane)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool | float) or not isinstance(value, int | str | Decimal):
        raise ValueError(f"expected an exact number such as 5 or \"2.50\", got {value!r}")
    try:
        number = Decimal(str(value).strip().removeprefix("$").removesuffix("%").strip())
    except InvalidOperation:
        raise ValueError(f"expected a number, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"expected a non-negative number, got {value!r}")
    return number


def check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {name!r}") from None
    return name


def _names(where: str, raw: Any, problems: list[tuple[str, str]], *, nullable: bool = False) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append((where, "expected a mapping of name: name"))
        return {}
    out: dict[str, str] = {}
    for key, value in raw.items():
        if value is None and nullable:
            out[str(key)] = NO_PROJECT
        elif isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            out[str(key)] = str(value).strip()
        else:
            problems.append((f"{where}.{key}", f"expected a name{' or null' if nullable else ''}, got {value!r}"))
    return out


def parse_reconcile(raw: Any) -> tuple[ReconcileSettings, list[tuple[str, str]]]:
    """The `reconcile:` mapping of costplane.yaml as settings, and every problem found."""
    problems: list[tuple[str, str]] = []
    if raw is None:
        return ReconcileSettings(), problems
    if not isinstance(raw, Mapping):
        return ReconcileSettings(), [("reconcile", "expected a mapping (drift_threshold_pct, drift_threshold_usd, …)")]
    for key in raw:
        if key not in _KEYS:
            problems.append((f"reconcile.{key}", f"unknown setting; expected one of {', '.join(_KEYS)}"))
    defaults = ReconcileSettings()
    values: dict[str, Any] = {}
    for key in ("drift_threshold_pct", "drift_threshold_usd"):
        if key in raw:
            try:
                values[key] = parse_decimal(raw[key])
            except ValueError as exc:
                problems.append((f"reconcile.{key}", str(exc)))
    if "timezone" in raw:
        try:
            values["timezone"] = check_zone(str(raw["timezone"]))
        except ValueError as exc:
            problems.append(("reconcile.timezone", str(exc)))
    values["projects"] = _names("reconcile.projects", raw.get("projects"), problems, nullable=True)
    values["models"] = {normalize_model(k): normalize_model(v) for k, v in
                        _names("reconcile.models", raw.get("models"), problems).items()}
    values["providers"] = _names("reconcile.providers", raw.get("providers"), problems)
    return replace(defaults, **values), problems
