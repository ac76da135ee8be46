"""Adapter from the `genai-prices` package to costplane's PriceSheet.

Only the data bundled with the installed package is read (`get_snapshot()`); its
update/auto-update machinery is never called, so pricing needs no network.

genai-prices keeps one `ModelPrice` per condition (always, from a start date,
during a daily time window); each has any number of price keys, and a model may
have request variants (service tiers, batch processing) that replace some keys.
Every price key of a unit genai-prices knows (`pricing.units`) is metered: the
five token types map onto PriceSheet's fields, the others (1-hour cache writes,
audio/image/video tokens, web searches, requests, …) onto `PriceSheet.units`,
variants onto `PriceSheet.variants`. Only a key outside the unit registry is
reported as `NotMetered`.

Where the data lacks Anthropic's 1-hour cache-write price, it is derived by
Anthropic's published rule (2 × the base input price, tier by tier) and noted.
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

from costplane.pricing.types import PriceSheet, Variant
from costplane.pricing.units import CORE_UNITS, UNITS, unit_by_price_key

__all__ = [
    "METERED_KEYS",
    "ConvertedPrice",
    "NotMetered",
    "Rule",
    "VariantRule",
    "convert",
    "data_version",
    "find_model",
    "providers",
    "rules_of",
    "variant_labels",
]

#: genai-prices price key -> PriceSheet field, for the five token types.
METERED_KEYS: dict[str, str] = {
    "input_mtok": "input",
    "output_mtok": "output",
    "cache_read_mtok": "cache_read",
    "cache_write_mtok": "cache_write",
    "output_reasoning_mtok": "reasoning",
}
#: Anthropic bills a 1-hour cache write at 2 x the base input price (docs.anthropic.com, prompt caching).
ANTHROPIC_1H_WRITE_FACTOR = Decimal(2)
_FINEST = Decimal("1e-9")  # USD/MTok = 1e-15 USD per token, PriceSheet's resolution


@dataclass(frozen=True, slots=True)
class NotMetered:
    """A genai-prices price key outside the unit registry: shown, not charged."""

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


@dataclass(frozen=True, slots=True)
class VariantRule:
    """A genai-prices request variant: prices that replace the standard ones `when` a call is
    served so (service_tier=priority, processing=batch, …), from `start` (UTC date) if given."""

    when: tuple[tuple[str, str], ...]
    price: ModelPrice
    start: date | None = None


def variants_of(info: ModelInfo) -> list[VariantRule]:
    """The model's request variants in the data's order (the first matching one wins per key)."""
    out: list[VariantRule] = []
    for variant in info.price_variants or ():
        start = variant.constraint.start_date if isinstance(variant.constraint, StartDateConstraint) else None
        out.append(VariantRule(tuple(sorted(variant.when.items())), variant.prices, start))
    return out


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
    """Request-specific price variants (batch, service tiers), as labels."""
    labels: list[str] = []
    for variant in info.price_variants or ():
        when = ", ".join(f"{key}={value}" for key, value in variant.when.items())
        if isinstance(variant.constraint, StartDateConstraint):
            when += f" (from {variant.constraint.start_date})"
        labels.append(when)
    return tuple(labels)


def convert(
    price: ModelPrice, *, model: str, provider: str, effective_from: date | None = None,
    variants: tuple[VariantRule, ...] = (),
) -> ConvertedPrice:
    """A ModelPrice as a PriceSheet (None when it has no input price or is entirely zero).
    `variants` are the request variants in force with it (already filtered by date)."""
    base: dict[str, Decimal] = {}
    tiered: dict[str, TieredPrices] = {}
    not_metered: list[NotMetered] = []
    notes: list[str] = []
    for key, value in vars(price).items():
        if key.startswith("_") or value is None:
            continue
        if not isinstance(value, (Decimal, TieredPrices)):
            continue
        unit = unit_by_price_key(key)
        if unit is None:
            not_metered.append(_not_metered(key, value))
            continue
        name = unit.name
        if isinstance(value, TieredPrices):
            tiered[name] = value
            base[name] = _exact(value.base, key, notes, unit.is_token)
        else:
            base[name] = _exact(value, key, notes, unit.is_token)
    if "input" not in base:
        notes.append("no input token price in genai-prices")
        others = [_not_metered(k, v) for k, v in vars(price).items()
                  if not k.startswith("_") and isinstance(v, (Decimal, TieredPrices))
                  and unit_by_price_key(k) is not None]  # e.g. audio hours only: no calls costplane serves
        return ConvertedPrice(None, tuple(not_metered + others), tuple(notes))
    if "output" not in base:
        notes.append("no output token price in genai-prices: output tokens cost 0 (e.g. embeddings)")
    starts = sorted({tier.start for prices in tiered.values() for tier in prices.tiers})
    tiers = tuple(
        (start, {field: _exact(tier.price, field, notes, UNITS[field].is_token)
                 for field, prices in tiered.items() for tier in prices.tiers if tier.start == start})
        for start in starts
    )
    if not any(base.values()) and all(not any(rates.values()) for _, rates in tiers):
        notes.append("every token price is 0 in genai-prices: treated as unknown (declare an override)")
        return ConvertedPrice(None, tuple(not_metered), tuple(notes))
    if "cache_write_1h" not in base and _anthropic(model, provider):
        base["cache_write_1h"] = base["input"] * ANTHROPIC_1H_WRITE_FACTOR
        tiers = tuple((start, {**rates, "cache_write_1h": rates["input"] * ANTHROPIC_1H_WRITE_FACTOR}
                       if "input" in rates else rates) for start, rates in tiers)
        notes.append("cache_write_1h derived as 2 x input (Anthropic's 1-hour cache-write rule; "
                     "genai-prices has no 1-hour cache-write price for this model)")
    built_variants: list[Variant] = []
    for variant in variants:
        merged = ModelPrice(**{**{k: v for k, v in vars(price).items() if not k.startswith("_")},
                               **{k: v for k, v in vars(variant.price).items()
                                  if not k.startswith("_") and v is not None}})
        converted = convert(merged, model=model, provider=provider, effective_from=effective_from)
        if converted.sheet is not None and all(v.when != variant.when for v in built_variants):
            built_variants.append(Variant(variant.when, converted.sheet))
    sheet = PriceSheet(
        model=model, provider=provider, input=base["input"], output=base.get("output", Decimal(0)),
        cache_read=base.get("cache_read"), cache_write=base.get("cache_write"),
        reasoning=base.get("reasoning"), tiers=tiers, source="genai-prices", effective_from=effective_from,
        units=tuple((name, rate) for name, rate in base.items() if name not in CORE_UNITS),
        variants=tuple(built_variants),
    )
    return ConvertedPrice(sheet, tuple(not_metered), tuple(notes))


def _anthropic(model: str, provider: str) -> bool:
    return provider == "anthropic" or "claude" in model.lower()


def _exact(value: Decimal, key: str, notes: list[str], token: bool = True) -> Decimal:
    if not token:  # counts and durations: kept exact (PriceSheet prices them as fractions)
        return value
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
