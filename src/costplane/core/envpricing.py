"""Price a blueprint's resources from the SKU table: hourly and projected cost, exact nano-USD."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from costplane.money import NANO_PER_USD
from costplane.policy.blueprintschema import BlueprintSpec, render
from costplane.pricing.skus import SkuCatalog, split_sku

__all__ = ["Estimate", "cost_for", "estimate"]


@dataclass(frozen=True, slots=True)
class Estimate:
    resources: tuple[Mapping[str, Any], ...]  # kind, sku, count, hourly_nano, gpu_type, source
    hourly_nano: int

    @property
    def gpu_type(self) -> str:
        return next((str(r["gpu_type"]) for r in self.resources if r.get("gpu_type")), "")

    @property
    def gpu_count(self) -> int:
        return sum(int(r["count"]) * int(r.get("gpus_each") or 0) for r in self.resources)

    def projected_nano(self, seconds: int) -> int:
        return cost_for(self.hourly_nano, seconds * 1_000_000)


def cost_for(hourly_nano: int, micros: int) -> int:
    """hourly × time, exact, rounded half-up once (micros: running time in µs)."""
    exact = Fraction(hourly_nano * max(0, micros), 3600 * 1_000_000)
    return int((exact + Fraction(1, 2)).__floor__())


def estimate(blueprint: BlueprintSpec, inputs: Mapping[str, Any], skus: SkuCatalog,
             at: datetime | None = None) -> Estimate:
    """Every resource priced; UnknownSku (LookupError) when a SKU has no price, ValueError on a bad count."""
    priced: list[Mapping[str, Any]] = []
    total = 0
    for index, resource in enumerate(blueprint.resources):
        count_text = render(resource.count, inputs)
        try:
            count = int(count_text)
        except ValueError:
            raise ValueError(f"resources[{index}].count: {count_text!r} is not an integer") from None
        if resource.sku is not None:
            rendered = render(resource.sku, inputs)
            price = skus.lookup(rendered, at)
            hourly = price.hourly_nano(count)
            asked = split_sku(rendered)[1]
            sku = f"{price.sku}@{asked}" if asked else price.sku  # the region asked for, kept for re-pricing
            priced.append({"kind": resource.kind, "sku": sku, "count": count, "hourly_nano": hourly,
                           "hourly_usd": str(price.hourly_usd), "gpu_type": price.gpu_type,
                           "gpus_each": price.gpu_count, "source": price.source, "as_of": price.as_of.isoformat()})
        else:
            hourly_usd = resource.hourly_usd or 0
            hourly = int(Fraction(hourly_usd) * count * NANO_PER_USD + Fraction(1, 2))
            priced.append({"kind": resource.kind, "sku": resource.name or resource.kind, "count": count,
                           "hourly_nano": hourly, "hourly_usd": str(hourly_usd), "gpu_type": None, "gpus_each": 0,
                           "source": f"blueprint {blueprint.name} resources[{index}].hourly_usd"})
        total += hourly
    return Estimate(tuple(priced), total)
