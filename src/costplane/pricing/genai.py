"""Adapter from the `genai-prices` package to costplane's PriceSheet.

Only the data bundled with the installed package is read (`get_snapshot()`); its
update/auto-update machinery is never called, so pricing needs no network.

genai-prices keeps one `ModelPrice` per condition (always, from a start date,
during a daily time window); each has any number of price keys. The five token
keys costplane meters map onto PriceSheet; every other key (web searches,
requests, audio/image tokens, 1h cache writes, …) is reported as `NotMetered`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from importlib.metadata import PackageNotFoundError, version

from genai_prices.data_snapshot import find_provider_by_id, get_snapshot
from genai_prices.types import (
    ConditionalPrice,
    ModelInfo,
    ModelPrice,
    Provider,
    StartDateConstraint,
    TieredPrices,
    TimeOfDateConstraint,
)
from genai_prices.units import UnitDef, _get_registry

from costplane.pricing.types import PriceSheet

__all__ = [
    "METERED_KEYS",
    "ConvertedPrice",
    "NotMetered",
    "Rule",
    "convert",
    "data_version",
    "find_model",
    "providers",
    "rules_of",
    "variant_labels",
]

#: genai-prices price key -> PriceSheet field.
METERED_KEYS: dict[str, str] = {
    "input_mtok": "input",
    "output_mtok": "output",
    "cache_read_mtok": "cache_read",
    "cache_write_mtok": "cache_write",
    "output_reasoning_mtok": "reasoning",
}
_FINEST = Decimal("1e-9")  # USD/MTok = 1e-15 USD per token, PriceSheet's resolution


@dataclass(frozen=True, slots=True)
class NotMetered:
    """A genai-prices price costplane does not charge (not per token, or a token kind it cannot see)."""

    price_key: str
    usd: Decimal  # base price, per `per` units
    per: int
    unit: str
    tiered: bool = False

    def label(self) -> str:
        tiers = " (+tiers)" if self.tiered else ""
        return f"{self.usd} USD per {self.per:,} {self.unit}{tiers}"


@dataclass(frozen=True, slots=True)
class ConvertedPrice:
    """One genai-prices ModelPrice as costplane sees it. sheet is None when it has no token price."""

    sheet: PriceSheet | None
    not_metered: tuple[NotMetered, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    """A genai-prices condition: from `start` (UTC date) or during a daily UTC window, or always."""

    price: ModelPrice
    start: date | None = None
    daily: tuple[time, time] | None = None  # naive UTC times, [start, end), may wrap midnight


def data_version() -> str:
    """The version of the genai-prices data in use (the installed package's, never an update)."""
    try:
        return f"genai-prices {version('genai-prices')}"
    except PackageNotFoundError:  # pragma: no cover - it is a dependency
        return "genai-prices (unknown version)"


def providers() -> list[Provider]:
    return get_snapshot().providers


def find_model(model: str, provider: str | None) -> tuple[Provider, ModelInfo] | None:
    """The genai-prices (provider, model) for a model reference, matched as genai-prices does.

    With a provider id, only that provider (and its declared fallback providers) is searched.
    Without, the provider whose model pattern claims the name is tried first, then every
    provider in the data's order.
    """
    snapshot = get_snapshot()
    if provider is not None:
        found = find_provider_by_id(snapshot.providers, provider)
        if found is None:
            return None
        info = found.find_model(model, all_providers=snapshot.providers)
        return (found, info) if info is not None else None
    try:
        return snapshot.find_provider_model(model, None, None, None)
    except LookupError:
        pass
    for candidate in snapshot.providers:
        info = candidate.find_model(model)
        if info is not None:
            return candidate, info
    return None


def rules_of(info: ModelInfo) -> list[Rule]:
    """The model's conditional prices in the data's order (genai-prices: the last active one wins)."""
    if isinstance(info.prices, ModelPrice):
        return [Rule(info.prices)]
    out: list[Rule] = []
    for conditional in info.prices:
        out.append(_rule(conditional))
    return out


def _rule(conditional: ConditionalPrice) -> Rule:
    constraint = conditional.constraint
    if isinstance(constraint, StartDateConstraint):
        return Rule(conditional.prices, start=constraint.start_date)
    if isinstance(constraint, TimeOfDateConstraint):
        return Rule(conditional.prices, daily=(_utc(constraint.start_time), _utc(constraint.end_time)))
    return Rule(conditional.prices)


def _utc(value: time) -> time:
    if value.tzinfo is None:
        return value
    return datetime.combine(date(2000, 1, 1), value).astimezone(UTC).time()


def variant_labels(info: ModelInfo) -> tuple[str, ...]:
    """Request-specific price variants (batch, service tiers) that costplane does not apply."""
    labels: list[str] = []
    for variant in info.price_variants or ():
        when = ", ".join(f"{key}={value}" for key, value in variant.when.items())
        if isinstance(variant.constraint, StartDateConstraint):
            when += f" (from {variant.constraint.start_date})"
        labels.append(when)
    return tuple(labels)


def convert(
    price: ModelPrice, *, model: str, provider: str, effective_from: date | None = None
) -> ConvertedPrice:
    """A ModelPrice as a PriceSheet (None when it has no input price or is entirely zero)."""
    base: dict[str, Decimal] = {}
    tiered: dict[str, TieredPrices] = {}
    not_metered: list[NotMetered] = []
    notes: list[str] = []
    for key, value in vars(price).items():
        if key.startswith("_") or value is None:
            continue
        if not isinstance(value, (Decimal, TieredPrices)):
            continue
        field = METERED_KEYS.get(key)
        if field is None:
            not_metered.append(_not_metered(key, value))
            continue
        if isinstance(value, TieredPrices):
            tiered[field] = value
            base[field] = _exact(value.base, key, notes)
        else:
            base[field] = _exact(value, key, notes)
    if "input" not in base:
        notes.append("no input token price in genai-prices")
        return ConvertedPrice(None, tuple(not_metered), tuple(notes))
    if "output" not in base:
        notes.append("no output token price in genai-prices: output tokens cost 0 (e.g. embeddings)")
    starts = sorted({tier.start for prices in tiered.values() for tier in prices.tiers})
    tiers = tuple(
        (start, {field: _exact(tier.price, field, notes)
                 for field, prices in tiered.items() for tier in prices.tiers if tier.start == start})
        for start in starts
    )
    if not any(base.values()) and all(not any(rates.values()) for _, rates in tiers):
        notes.append("every token price is 0 in genai-prices: treated as unknown (declare an override)")
        return ConvertedPrice(None, tuple(not_metered), tuple(notes))
    sheet = PriceSheet(
        model=model, provider=provider, input=base["input"], output=base.get("output", Decimal(0)),
        cache_read=base.get("cache_read"), cache_write=base.get("cache_write"),
        reasoning=base.get("reasoning"), tiers=tiers, source="genai-prices", effective_from=effective_from,
    )
    return ConvertedPrice(sheet, tuple(not_metered), tuple(notes))


def _exact(value: Decimal, key: str, notes: list[str]) -> Decimal:
    """The price itself, or rounded half-up to 1e-9 USD/MTok when the data is finer (float residue)."""
    if value == value.quantize(_FINEST, rounding=ROUND_HALF_UP):
        return value
    rounded = value.quantize(_FINEST, rounding=ROUND_HALF_UP).normalize()
    notes.append(f"{key} {value} rounded to {rounded} USD/MTok (1e-15 USD per token resolution)")
    return rounded


def _not_metered(key: str, value: Decimal | TieredPrices) -> NotMetered:
    usd = value.base if isinstance(value, TieredPrices) else value
    tiered = isinstance(value, TieredPrices)
    try:
        unit: UnitDef | None = _get_registry().unit_for_price_key(key)
    except KeyError:
        unit = None
    if unit is None:
        return NotMetered(key, usd, 1, key.replace("_", " "), tiered)
    name = unit.usage_key.replace("_", " ")
    return NotMetered(key, usd, unit.per, name, tiered)
