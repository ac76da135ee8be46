"""Re-pricing recorded usage on another model: the Catalog is the only notion of price."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from costplane.config import Config
from costplane.pricing.catalog import Catalog
from costplane.pricing.types import PriceSheet, TokenUsage, UnknownPrice

__all__ = ["dearer", "model_families", "price_sheet", "pricing_provider", "reprice", "route_target"]


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


def dearer(large: PriceSheet, small: PriceSheet) -> bool:
    """`large` costs more than `small` per input token and per output token (a right-sizing candidate)."""
    return large.input > small.input and large.output > small.output


def model_families(sheets: Mapping[str, PriceSheet]) -> list[list[str]]:
    """The models of `sheets` in the families one can stand in for another within, each sorted by name:
    models that charge for output (chat, completions) and models that do not (embeddings). A route from
    a chat model to an embedding model would be cheaper on paper and break every request."""
    families: dict[bool, list[str]] = {}
    for model in sorted(sheets):
        families.setdefault(sheets[model].output > 0, []).append(model)
    return [families[k] for k in sorted(families, reverse=True)]


def reprice(usages: Iterable[TokenUsage], sheet: PriceSheet) -> int:
    """What the recorded `usages` (of the events that were charged: cache hits stay free) cost at `sheet`."""
    return sum(sheet.cost_nano(usage) for usage in usages)
