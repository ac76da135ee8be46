"""Hourly prices of machine and GPU SKUs, by region: shipped public price tables plus costplane.yaml overrides.

SKU ids are ``provider/instance-type`` (``aws/p4d.24xlarge``, ``gcp/a3-highgpu-8g``,
``azure/Standard_NC24ads_A100_v4``) and ``provider/gpu/TYPE`` for one GPU's share of a GPU
machine (``aws/gpu/A100-80GB``). A region is given to `lookup(..., region=)` or as a suffix,
``gcp/a3-highgpu-8g@europe-west4``; without one, the provider's default region is meant (aws
us-east-1, gcp us-central1, azure eastus). Lookup is case-insensitive. Prices are on-demand
list prices in USD per hour (Decimal, exact), each naming its source and as-of date.

The aws/azure/gcp tables (``data/skus-<provider>.csv.gz``, pricing/cloudskus.py) are read the
first time a SKU of that provider is looked up. A type the data does not price in the
requested region raises UnpricedRegion naming the nearest priced region — or, where
``pricing.sku_region_fallback`` allows it, is priced from that region and flagged
``estimated``. ``pricing.skus`` (pricing/skuconfig.py) overrides a row or adds a SKU (for a
region with ``@region``; without one, for the default region and, for a type the shipped data
lacks altogether such as ``gcp/gpu/T4``, for every region), optionally from a date on. A SKU
with no price raises UnknownSku — never a silent $0.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from importlib import resources

from costplane.pricing.cloudskus import CLOUD_PROVIDERS, CloudTable, load_table, nearest_region, normalise_region
from costplane.pricing.config import PricingConfig
from costplane.pricing.skuconfig import SkuOverride

__all__ = ["SkuCatalog", "SkuPrice", "UnknownSku", "UnpricedRegion", "split_sku"]

_NANO = 1_000_000_000
_SHIPPED_FROM = date(1970, 1, 1)
_DERIVED = re.compile(r"^derived: (\S+?)(?: / (\d+))?$")


class UnknownSku(LookupError):
    """No price is known for this SKU."""

    def __init__(self, sku: str, known: Iterable[str] = (), message: str | None = None) -> None:
        self.sku = sku
        hint = ""
        near = list(known)[:6]
        if near:
            hint = f" (known {sku.split('/', 1)[0].lower()} SKUs include {', '.join(near)})"
        super().__init__(message or f"no known price for SKU {sku!r}{hint}; declare one under pricing.skus in "
                                    "costplane.yaml")


class UnpricedRegion(UnknownSku):
    """The SKU is priced, but not in the requested region; `nearest` is the nearest region that prices it."""

    def __init__(self, sku: str, region: str, nearest: str | None, table: CloudTable) -> None:
        self.region = region
        self.nearest = nearest
        base = split_sku(sku)[0]
        listed = region in table.regions()
        what = "does not price it there" if listed else f"lists no region {region!r} ({len(table.regions())} regions)"
        where = (f"nearest priced region: {nearest}; declare {base}@{region} under pricing.skus in costplane.yaml, "
                 f"or set pricing.sku_region_fallback: nearest to estimate it from {nearest}") if nearest else (
            f"declare {base}@{region} under pricing.skus in costplane.yaml")
        super().__init__(sku, message=f"no price for SKU {base!r} in region {region!r}: the {table.provider} price "
                                      f"data (as of {table.as_of}) {what}; {where}")


@dataclass(frozen=True, slots=True)
class SkuPrice:
    """The hourly price of one SKU in one region, with what it is and where the price came from."""

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
    region: str = ""  # the region whose price this is ("" for SKUs without regions, e.g. on-prem)
    estimated: bool = False  # priced from `region`, the nearest priced region, not the one asked for
    spot: bool = False

    def cost_nano(self, seconds: int | Decimal, count: int = 1) -> int:
        """Cost of `count` units running `seconds`, in nano-USD: exact, rounded half-up once."""
        if isinstance(seconds, bool) or isinstance(count, bool):
            raise TypeError("seconds and count must be numbers, not booleans")
        if seconds < 0 or count < 0:
            raise ValueError(f"seconds and count must be >= 0, got {seconds} and {count}")
        exact = Fraction(self.hourly_usd) * count * Fraction(seconds) * _NANO / 3600
        return int((exact + Fraction(1, 2)).__floor__())

    def hourly_nano(self, count: int = 1) -> int:
        """nano-USD per hour for `count` units (rounded half-up once where a price has more than 9 decimals)."""
        return self.cost_nano(3600, count)


def split_sku(sku: str) -> tuple[str, str]:
    """(``provider/type``, region) of a SKU id with an optional ``@region`` suffix."""
    base, _, region = sku.strip().partition("@")
    return base.strip(), region.strip()


def _shares() -> dict[str, SkuPrice]:
    text = resources.files("costplane").joinpath("data/skus.csv").read_text(encoding="utf-8")
    rows: dict[str, SkuPrice] = {}
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            rows[row["sku"].lower()] = SkuPrice(
                sku=row["sku"], provider=row["provider"], hourly_usd=Decimal(row["hourly_usd"]),
                gpu_type=row["gpu_type"] or None, gpu_count=int(row["gpu_count"] or 0),
                vcpus=int(row["vcpus"]) if row["vcpus"] else None,
                memory_gib=Decimal(row["memory_gib"]) if row["memory_gib"] else None,
                source=row["source"], as_of=date.fromisoformat(row["as_of"]),
            )
        except (KeyError, ValueError, ArithmeticError) as exc:  # a broken shipped file is a packaging bug
            raise RuntimeError(f"costplane/data/skus.csv:{line}: {exc}") from exc
    return rows


def _day(at: datetime | None) -> date:
    when = at or datetime.now(UTC)
    return (when.astimezone(UTC) if when.tzinfo else when).date()  # naive means UTC


class SkuCatalog:
    """All known SKU prices; build with `SkuCatalog.load(config.pricing)`. Tables load on first use."""

    def __init__(self, overrides: Iterable[SkuOverride] = (), source: str = "costplane.yaml",
                 region_fallback: Iterable[str] = ()) -> None:
        self._declared: dict[str, list[SkuOverride]] = {}
        for override in overrides:
            base, region = split_sku(override.sku)
            provider = base.split("/", 1)[0].lower()
            key = f"{base}@{normalise_region(provider, region)}" if region else base
            self._declared.setdefault(key.lower(), []).append(override)
        for versions in self._declared.values():
            versions.sort(key=lambda o: o.effective_from or _SHIPPED_FROM)
        self._source = source
        self._fallback = frozenset(p.lower() for p in region_fallback)
        self._tables: dict[str, CloudTable | None] = {}
        self._share_rows: dict[str, SkuPrice] | None = None

    @classmethod
    def load(cls, config: PricingConfig | None = None) -> SkuCatalog:
        """The shipped tables with the `pricing.skus` overrides of costplane.yaml applied (nothing read yet)."""
        if config is None:
            return cls()
        return cls(config.skus, config.source, config.sku_region_fallback)

    def table(self, provider: str) -> CloudTable | None:
        """The shipped table of a cloud provider, read on first use; None for other providers."""
        key = provider.lower()
        if key not in self._tables:
            self._tables[key] = load_table(key)
        return self._tables[key]

    def _share(self, base: str) -> SkuPrice | None:
        if self._share_rows is None:
            self._share_rows = _shares()
        return self._share_rows.get(base.lower())

    def lookup(self, sku: str, at: datetime | None = None, region: str | None = None,
               spot: bool = False) -> SkuPrice:
        """The price of `sku` in `region` (default: the SKU's ``@region``, else the provider's default region)
        in effect at `at` (default: now); UnknownSku (UnpricedRegion for a region gap) if none is."""
        base, key_region = split_sku(sku)
        if "/" not in base:
            raise UnknownSku(sku)
        provider = base.split("/", 1)[0].lower()
        asked = normalise_region(provider, region or key_region)
        table = self.table(provider)
        shipped_region = table.default_region if table is not None else ""
        day = _day(at)
        if spot:  # a declared Spot price is `provider/spot/type`; on-demand declarations never stand in for Spot
            declared_base = f"{provider}/spot/{base.split('/', 1)[1]}"
            for key in ([f"{declared_base}@{asked}"] if asked else []) + [declared_base]:
                found = [o for o in self._declared.get(key.lower(), ()) if (o.effective_from or _SHIPPED_FROM) <= day]
                if found:
                    return replace(self._from_override(found[-1], base, asked or shipped_region, table), spot=True)
            if table is None:
                raise UnknownSku(sku, message=f"no Spot price for SKU {base!r}; declare {declared_base} under "
                                              "pricing.skus in costplane.yaml")
            return self._shipped(sku, base, asked or shipped_region, table, spot)
        for key in ([f"{base}@{asked}"] if asked else []) + ([base] if asked in ("", shipped_region) else []):
            declared = [o for o in self._declared.get(key.lower(), ()) if (o.effective_from or _SHIPPED_FROM) <= day]
            if declared:
                return self._from_override(declared[-1], base, asked or shipped_region, table)
        if table is None or not self._ships(base, table):
            if asked and self._declared.get(base.lower()):  # declared without a region: prices every region
                declared = [o for o in self._declared[base.lower()] if (o.effective_from or _SHIPPED_FROM) <= day]
                if declared:
                    return self._from_override(declared[-1], base, asked, None)
            if table is None:
                raise UnknownSku(sku, sorted(k for k in self._declared if k.startswith(provider + "/")))
        return self._shipped(sku, base, asked or table.default_region, table, spot)

    def _ships(self, base: str, table: CloudTable) -> bool:
        """Whether the shipped data has the type of `base` at all (in some region)."""
        name = base.split("/", 1)[1]
        if name.lower().startswith("gpu/"):
            return self._share(base) is not None
        return table.find(name) is not None

    def _shipped(self, sku: str, base: str, region: str, table: CloudTable, spot: bool) -> SkuPrice:
        name = base.split("/", 1)[1]
        divisor = 1
        share = self._share(base) if name.lower().startswith("gpu/") else None
        if name.lower().startswith("gpu/"):
            derived = _DERIVED.match(share.source) if share is not None else None
            if share is None or derived is None:
                raise UnknownSku(sku, self._known_shares(table.provider))
            if region == table.default_region and not spot:
                return replace(share, region=region)
            name, divisor = derived.group(1).split("/", 1)[1], int(derived.group(2) or 1)
        row = table.find(name)
        if row is None:
            raise UnknownSku(sku, self._similar(table, name))
        price = table.price(row, region, spot)
        estimated = False
        priced_in = region
        if price is None:
            nearest = nearest_region(region, table.priced_regions(row, spot), table.default_region)
            if nearest is None or not ({"*", table.provider} & self._fallback):
                if spot and table.priced_regions(row, False) and region in table.regions():
                    raise UnknownSku(sku, message=f"no Spot price for SKU {base!r} in region {region!r} in the "
                                                  f"{table.provider} price data (as of {table.as_of}); declare "
                                                  f"{table.provider}/spot/{row[0]} under pricing.skus in "
                                                  "costplane.yaml")
                raise UnpricedRegion(sku, region, nearest, table)
            priced_in, estimated = nearest, True
            price = table.price(row, nearest, spot)
            if price is None:  # pragma: no cover - nearest_region only returns priced regions
                raise UnpricedRegion(sku, region, None, table)
        source = table.source + (" (Spot)" if spot else "")
        if share is not None:
            source = f"derived: {table.provider}/{row[0]} / {divisor} in {priced_in}; {table.source}"
        if estimated:
            source += f"; estimated: {region} is not priced, price of {priced_in}"
        gpu_type = share.gpu_type if share is not None else (row[1] or None)
        gpu_count = 1 if share is not None else int(row[2] or 0)
        return SkuPrice(
            sku=base if share is not None else f"{table.provider}/{row[0]}", provider=table.provider,
            hourly_usd=price / divisor, gpu_type=gpu_type, gpu_count=gpu_count,
            vcpus=int(row[3]) if row[3] and share is None else None,
            memory_gib=Decimal(row[4]) if row[4] and share is None else None,
            source=source, as_of=table.as_of, region=region if not estimated else priced_in, estimated=estimated,
            spot=spot,
        )

    def _from_override(self, override: SkuOverride, base: str, region: str, table: CloudTable | None) -> SkuPrice:
        shipped: SkuPrice | None = None
        if table is not None:
            for where in dict.fromkeys((region or table.default_region, table.default_region)):
                try:  # the hardware facts of the shipped row, from the default region if need be
                    shipped = self._shipped(base, base, where, table, False)
                    break
                except UnknownSku:
                    continue
        effective = override.effective_from or _SHIPPED_FROM
        source = override.source or f"{self._source}: {override.path}"
        if shipped is not None:
            return replace(
                shipped, hourly_usd=override.hourly_usd,
                gpu_type=override.gpu_type if override.gpu_type is not None else shipped.gpu_type,
                gpu_count=override.gpu_count if override.gpu_count is not None else shipped.gpu_count,
                vcpus=override.vcpus if override.vcpus is not None else shipped.vcpus,
                memory_gib=override.memory_gib if override.memory_gib is not None else shipped.memory_gib,
                source=source, as_of=override.effective_from or shipped.as_of, effective_from=effective,
                region=region, estimated=False,
            )
        gpu_count = override.gpu_count if override.gpu_count is not None else (1 if override.gpu_type else 0)
        return SkuPrice(
            sku=base, provider=base.split("/", 1)[0], hourly_usd=override.hourly_usd, gpu_type=override.gpu_type,
            gpu_count=gpu_count, vcpus=override.vcpus, memory_gib=override.memory_gib, source=source,
            as_of=override.effective_from or datetime.now(UTC).date(), effective_from=effective, region=region,
        )

    def _known_shares(self, provider: str) -> list[str]:
        if self._share_rows is None:
            self._share_rows = _shares()
        return [p.sku for p in self._share_rows.values() if p.provider == provider]

    @staticmethod
    def _similar(table: CloudTable, name: str) -> list[str]:
        family = re.split(r"[.\-_]", name.lower().removeprefix("standard_"), maxsplit=1)[0]
        near = [t for t in table.types() if family and family in t.lower()]
        return [f"{table.provider}/{t}" for t in (near or table.types())[:6]]

    def gpu(self, provider: str, gpu_type: str, at: datetime | None = None) -> SkuPrice:
        """One GPU's share on `provider` (``provider/gpu/TYPE``)."""
        return self.lookup(f"{provider}/gpu/{gpu_type}", at)

    def skus(self) -> tuple[str, ...]:
        """Every known SKU id (default region), sorted; reads every provider's table."""
        names = {o[-1].sku for o in self._declared.values()}
        if self._share_rows is None:
            self._share_rows = _shares()
        names.update(p.sku for p in self._share_rows.values())
        for provider in CLOUD_PROVIDERS:
            table = self.table(provider)
            if table is not None:
                names.update(f"{provider}/{t}" for t in table.types())
        return tuple(sorted(names, key=str.lower))

    def prices(self, at: datetime | None = None, prefix: str = "") -> list[SkuPrice]:
        """The price of every SKU (whose id starts with `prefix`) in effect at `at`, in its default region
        (SKUs with none in effect there are left out)."""
        out: list[SkuPrice] = []
        for sku in self.skus():
            if not sku.lower().startswith(prefix.lower()):
                continue
            try:
                out.append(self.lookup(sku, at))
            except UnknownSku:
                continue
        return out

    def __len__(self) -> int:
        return len(self.skus())
