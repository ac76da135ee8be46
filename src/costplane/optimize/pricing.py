"""Re-pricing recorded usage on another model: the Catalog is the only notion of price."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from costplane.config import Config
from costplane.ledger.types import CostEvent
from costplane.pricing.catalog import Catalog
from costplane.pricing.types import PriceSheet, UnknownPrice

__all__ = ["price_sheet", "pricing_provider", "reprice", "route_target"]


def route_target(config: Config, model: str, protocol: str) -> tuple[str, str | None] | None:
    """(upstream model, genai-prices provider) a request for `model` would be sent to, as the decision
    core resolves it; None when no provider serves it. With no providers configured at all, the model
    name is priced as is."""
    if not config.providers:
        return model, None
    served = config.provider_for(model, protocol)
    if served is None:
        return None
    return served[1], served[0].pricing_provider


def pricing_provider(config: Config, provider_name: str) -> str | None:
    """The genai-prices provider of the configured provider `provider_name` (None: match by model)."""
    for provider in config.providers:
        if provider.name == provider_name:
            return provider.pricing_provider
    return None


def price_sheet(catalog: Catalog, model: str, provider: str | None, at: datetime) -> PriceSheet | None:
    """The price the decision core would charge at `at` (the unknown-price rule applied), None if denied."""
    try:
        return catalog.resolve(model, provider, at)
    except UnknownPrice:
        return None


def reprice(events: Iterable[CostEvent], sheet: PriceSheet) -> int:
    """What the recorded usage of `events` costs at `sheet` (cache hits stay free)."""
    return sum(sheet.cost_nano(e.usage) for e in events if e.kind != "cache_hit")
