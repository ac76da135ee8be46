"""The `pricing.skus:` section of costplane.yaml: declared hourly prices of machine and GPU SKUs.

    pricing:
      skus:
        - sku: aws/p4d.24xlarge        # overrides the shipped row (attributes not given are kept)
          hourly_usd: "21.96"          # USD per hour, exact
          effective_from: 2026-01-01   # optional, 00:00 UTC of that date
          source: enterprise discount  # optional
        - sku: aws/m5.large@eu-west-1  # a region the shipped data does not price
          hourly_usd: "0.107"
        - sku: gcp/gpu/T4              # GPUs attached to N1 machines (not in the public data)
          hourly_usd: "0.35"
        - sku: onprem/gpu/H100         # a SKU the shipped table does not know
          hourly_usd: "2.10"
          gpu_type: H100
          gpu_count: 1

      sku_region_fallback: nearest     # or {aws: nearest}: price unpriced regions from the nearest
                                       # priced one, flagged estimated (default: unknown_price)

Errors are reported through the caller's `error(path, message)` so that they carry
file:line and the field like the rest of the pricing section.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["SKU_KEYS", "SkuOverride", "parse_region_fallback", "parse_sku_overrides"]

SKU_KEYS = ("sku", "hourly_usd", "gpu_type", "gpu_count", "vcpus", "memory_gib", "effective_from", "source")


@dataclass(frozen=True, slots=True)
class SkuOverride:
    """A price for one SKU declared in costplane.yaml (attributes left None inherit the shipped row)."""

    sku: str
    hourly_usd: Decimal
    gpu_type: str | None = None
    gpu_count: int | None = None
    vcpus: int | None = None
    memory_gib: Decimal | None = None
    effective_from: date | None = None
    source: str | None = None
    index: int = 0

    @property
    def path(self) -> str:
        return f"pricing.skus[{self.index}]"


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip().replace("_", ""))
    except InvalidOperation:
        return None
    if not number.is_finite() or number < 0:
        return None
    return number + 0


def _shown(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"


def parse_sku_overrides(value: Any, error: Callable[[str, str], None]) -> tuple[SkuOverride, ...]:
    """Validate the list under `pricing.skus`; report each problem through error(path, message)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        error("pricing.skus", f"expected a list of {{sku, hourly_usd}} mappings, got {_shown(value)}")
        return ()
    out: list[SkuOverride] = []
    seen: dict[tuple[str, date | None], int] = {}
    for index, item in enumerate(value):
        parsed = _one(index, item, error)
        if parsed is None:
            continue
        key = (parsed.sku.lower(), parsed.effective_from)
        if key in seen:
            error(parsed.path, f"duplicates pricing.skus[{seen[key]}] (same sku and effective_from)")
        seen[key] = index
        out.append(parsed)
    return tuple(out)


def _one(index: int, item: Any, error: Callable[[str, str], None]) -> SkuOverride | None:
    path = f"pricing.skus[{index}]"
    if not isinstance(item, dict):
        error(path, f"expected a mapping with sku and hourly_usd, got {_shown(item)}")
        return None
    ok = True
    for key in item:
        if key not in SKU_KEYS:
            error(f"{path}.{key}", f"unknown field; expected one of {', '.join(SKU_KEYS)}")
            ok = False
    sku = item.get("sku")
    if not isinstance(sku, str) or "/" not in sku.strip():
        error(f"{path}.sku", f"expected a SKU id such as aws/p4d.24xlarge or aws/gpu/A100-80GB, got {_shown(sku)}")
        ok = False
    hourly = _decimal(item.get("hourly_usd"))
    if hourly is None:
        error(f"{path}.hourly_usd", f"expected a non-negative USD per hour amount such as \"1.25\", got "
              f"{_shown(item.get('hourly_usd'))}")
        ok = False
    ints: dict[str, int | None] = {}
    for name in ("gpu_count", "vcpus"):
        raw = item.get(name)
        if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int) or raw < 0):
            error(f"{path}.{name}", f"expected an integer >= 0, got {_shown(raw)}")
            ok = False
        ints[name] = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    memory = None
    if item.get("memory_gib") is not None:
        memory = _decimal(item.get("memory_gib"))
        if memory is None:
            error(f"{path}.memory_gib", f"expected a number of GiB, got {_shown(item.get('memory_gib'))}")
            ok = False
    gpu_type, source = item.get("gpu_type"), item.get("source")
    for name, text in (("gpu_type", gpu_type), ("source", source)):
        if text is not None and not isinstance(text, str):
            error(f"{path}.{name}", f"expected text, got {_shown(text)}")
            ok = False
    effective = item.get("effective_from")
    when: date | None = None
    if effective is not None:
        if isinstance(effective, date) and not isinstance(effective, datetime):
            when = effective
        else:
            try:
                when = date.fromisoformat(str(effective).strip())
            except ValueError:
                error(f"{path}.effective_from", f"expected a date such as 2026-01-01, got {_shown(effective)}")
                ok = False
    if not ok or hourly is None or not isinstance(sku, str):
        return None
    return SkuOverride(
        sku=sku.strip(), hourly_usd=hourly, gpu_type=gpu_type if isinstance(gpu_type, str) else None,
        gpu_count=ints["gpu_count"], vcpus=ints["vcpus"], memory_gib=memory, effective_from=when,
        source=source if isinstance(source, str) else None, index=index,
    )


def parse_region_fallback(value: Any, error: Callable[[str, str], None]) -> tuple[str, ...]:
    """`pricing.sku_region_fallback`: ``nearest`` (every cloud), ``unknown`` (the default), or a mapping
    ``{aws: nearest, azure: unknown}``. Returns the providers priced from the nearest region ("*" = all)."""
    path = "pricing.sku_region_fallback"
    if value is None:
        return ()
    choices = ("nearest", "unknown")
    if isinstance(value, str):
        if value.strip().lower() not in choices:
            error(path, f"expected nearest or unknown, got {_shown(value)}")
            return ()
        return ("*",) if value.strip().lower() == "nearest" else ()
    if not isinstance(value, dict):
        error(path, f"expected nearest, unknown or a mapping of provider to nearest|unknown, got {_shown(value)}")
        return ()
    out: list[str] = []
    for provider, rule in value.items():
        if not isinstance(provider, str) or not isinstance(rule, str) or rule.strip().lower() not in choices:
            error(f"{path}.{provider}", f"expected nearest or unknown, got {_shown(rule)}")
            continue
        if rule.strip().lower() == "nearest":
            out.append(provider.strip().lower())
    return tuple(out)
