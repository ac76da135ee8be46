"""Hourly prices of machine and GPU SKUs: a shipped, dated table plus costplane.yaml overrides.

SKU ids are ``provider/instance-type`` (``aws/p4d.24xlarge``, ``gcp/g2-standard-4``,
``azure/Standard_NC24ads_A100_v4``) and ``provider/gpu/TYPE`` for one GPU's share of
a GPU machine (``aws/gpu/A100-80GB``). Lookup is case-insensitive. Prices are
on-demand list prices in USD per hour (Decimal, exact), each row naming its source
and the date it was read (``src/costplane/data/skus.csv``).

``pricing.skus`` in costplane.yaml (see pricing/skuconfig.py) overrides a shipped row
or adds a SKU, optionally from a date on; `lookup(sku, at)` picks the latest price
in effect at `at` (UTC). A SKU with no price raises UnknownSku — never a silent $0.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from importlib import resources

from costplane.pricing.config import PricingConfig
from costplane.pricing.skuconfig import SkuOverride

__all__ = ["SkuCatalog", "SkuPrice", "UnknownSku"]

_NANO = 1_000_000_000
_SHIPPED_FROM = date(1970, 1, 1)


class UnknownSku(LookupError):
    """No price is known for this SKU."""

    def __init__(self, sku: str, known: tuple[str, ...] = ()) -> None:
        self.sku = sku
        hint = ""
        if known:
            prefix = sku.split("/", 1)[0].lower()
            near = [k for k in known if k.lower().startswith(prefix + "/")][:6]
            hint = f" (known {prefix} SKUs include {', '.join(near)})" if near else ""
        super().__init__(f"no known price for SKU {sku!r}{hint}; declare one under pricing.skus in costplane.yaml")


@dataclass(frozen=True, slots=True)
class SkuPrice:
    """The on-demand hourly price of one SKU, with what it is and where the price came from."""

    sku: str
    provider: str
    hourly_usd: Decimal
    gpu_type: str | None
    gpu_count: int
    vcpus: int | None
    memory_gib: Decimal | None
    source: str
    as_of: date
    effective_from: date = _SHIPPED_FROM

    def cost_nano(self, seconds: int | Decimal, count: int = 1) -> int:
        """Cost of `count` units running `seconds`, in nano-USD: exact, rounded half-up once."""
        if isinstance(seconds, bool) or isinstance(count, bool):
            raise TypeError("seconds and count must be numbers, not booleans")
        if seconds < 0 or count < 0:
            raise ValueError(f"seconds and count must be >= 0, got {seconds} and {count}")
        exact = Fraction(self.hourly_usd) * count * Fraction(seconds) * _NANO / 3600
        return int((exact + Fraction(1, 2)).__floor__())

    def hourly_nano(self, count: int = 1) -> int:
        """nano-USD per hour for `count` units (exact: prices have at most 9 decimals of USD)."""
        return self.cost_nano(3600, count)


def _shipped_rows() -> list[SkuPrice]:
    text = resources.files("costplane").joinpath("data/skus.csv").read_text(encoding="utf-8")
    rows: list[SkuPrice] = []
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            rows.append(SkuPrice(
                sku=row["sku"], provider=row["provider"], hourly_usd=Decimal(row["hourly_usd"]),
                gpu_type=row["gpu_type"] or None, gpu_count=int(row["gpu_count"] or 0),
                vcpus=int(row["vcpus"]) if row["vcpus"] else None,
                memory_gib=Decimal(row["memory_gib"]) if row["memory_gib"] else None,
                source=row["source"], as_of=date.fromisoformat(row["as_of"]),
            ))
        except (KeyError, ValueError, ArithmeticError) as exc:  # a broken shipped file is a packaging bug
            raise RuntimeError(f"costplane/data/skus.csv:{line}: {exc}") from exc
    return rows


class SkuCatalog:
    """All known SKU prices; build with `SkuCatalog.load(config.pricing)`."""

    def __init__(self, prices: list[SkuPrice]) -> None:
        self._prices: dict[str, list[SkuPrice]] = {}
        for price in prices:
            self._prices.setdefault(price.sku.lower(), []).append(price)
        for versions in self._prices.values():
            versions.sort(key=lambda p: p.effective_from)

    @classmethod
    def load(cls, config: PricingConfig | None = None) -> SkuCatalog:
        """The shipped table with the `pricing.skus` overrides of costplane.yaml applied."""
        prices = _shipped_rows()
        base = {p.sku.lower(): p for p in prices}
        for override in (config.skus if config is not None else ()):
            prices.append(_from_override(override, base.get(override.sku.lower()),
                                         config.source if config is not None else "costplane.yaml"))
        return cls(prices)

    def lookup(self, sku: str, at: datetime | None = None) -> SkuPrice:
        """The price of `sku` in effect at `at` (default: now); UnknownSku if none is."""
        versions = self._prices.get(sku.strip().lower())
        if not versions:
            raise UnknownSku(sku, self.skus())
        when = at or datetime.now(UTC)
        day = (when.astimezone(UTC) if when.tzinfo else when).date()  # naive means UTC
        current = [p for p in versions if p.effective_from <= day]
        if not current:
            raise UnknownSku(sku)
        return current[-1]

    def gpu(self, provider: str, gpu_type: str, at: datetime | None = None) -> SkuPrice:
        """One GPU's share on `provider` (``provider/gpu/TYPE``)."""
        return self.lookup(f"{provider}/gpu/{gpu_type}", at)

    def skus(self) -> tuple[str, ...]:
        """Every known SKU id, sorted."""
        return tuple(sorted(v[-1].sku for v in self._prices.values()))

    def prices(self, at: datetime | None = None) -> list[SkuPrice]:
        """The price of every SKU in effect at `at` (SKUs with none in effect are left out)."""
        out: list[SkuPrice] = []
        for sku in self.skus():
            try:
                out.append(self.lookup(sku, at))
            except UnknownSku:
                continue
        return out

    def __len__(self) -> int:
        return len(self._prices)


def _from_override(override: SkuOverride, base: SkuPrice | None, source: str) -> SkuPrice:
    effective = override.effective_from or _SHIPPED_FROM
    if base is not None:
        return replace(
            base, sku=base.sku, hourly_usd=override.hourly_usd,
            gpu_type=override.gpu_type if override.gpu_type is not None else base.gpu_type,
            gpu_count=override.gpu_count if override.gpu_count is not None else base.gpu_count,
            vcpus=override.vcpus if override.vcpus is not None else base.vcpus,
            memory_gib=override.memory_gib if override.memory_gib is not None else base.memory_gib,
            source=override.source or f"{source}: {override.path}",
            as_of=override.effective_from or base.as_of, effective_from=effective,
        )
    gpu_count = override.gpu_count if override.gpu_count is not None else (1 if override.gpu_type else 0)
    return SkuPrice(
        sku=override.sku, provider=override.sku.split("/", 1)[0], hourly_usd=override.hourly_usd,
        gpu_type=override.gpu_type, gpu_count=gpu_count, vcpus=override.vcpus, memory_gib=override.memory_gib,
        source=override.source or f"{source}: {override.path}",
        as_of=override.effective_from or datetime.now(UTC).date(), effective_from=effective,
    )
