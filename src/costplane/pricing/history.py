"""The price history of one (provider, model): every price it can have and when.

A `PriceHistory` is compiled once per (provider, model) from the genai-prices
conditions and the matching overrides; pricing a call is then a few datetime
comparisons. Rules are tried in order, the first active one wins:

1. overrides, the most recently effective first (same date: exact name before glob,
   named provider before none, later in the file first);
2. genai-prices conditions, last to first (genai-prices: the last active one wins);
3. when nothing is active, genai-prices' first price (its own fallback).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal

from genai_prices.types import ModelInfo, Provider

from costplane.pricing import genai
from costplane.pricing.config import Override
from costplane.pricing.genai import NotMetered
from costplane.pricing.types import PriceSheet

__all__ = ["PriceHistory", "PriceRule", "build_history", "override_matches"]


@dataclass(frozen=True, slots=True)
class PriceRule:
    """One price of a model and the condition under which it applies."""

    sheet: PriceSheet | None  # None: no token price while this rule applies (unknown-price rule)
    source: str  # "genai-prices" | "override"
    start: datetime | None = None  # aware, 00:00 UTC of the first day
    daily: tuple[time, time] | None = None  # naive UTC times, [start, end), may wrap midnight
    not_metered: tuple[NotMetered, ...] = ()
    notes: tuple[str, ...] = ()
    override: Override | None = None
    label: str | None = None  # the condition as shown, when it differs from start/daily

    def active(self, at: datetime) -> bool:
        """Whether the rule applies at `at` (an aware datetime)."""
        if self.start is not None and at < self.start:
            return False
        if self.daily is not None:
            now = at.astimezone(UTC).time()
            begin, end = self.daily
            if end < begin:
                return now >= begin or now < end
            return begin <= now < end
        return True

    @property
    def condition(self) -> str:
        if self.label is not None:
            return self.label
        if self.start is not None:
            return f"from {self.start.date().isoformat()}"
        if self.daily is not None:
            return f"daily {self.daily[0]:%H:%M}-{self.daily[1]:%H:%M} UTC"
        return "always"


@dataclass(frozen=True, slots=True)
class PriceHistory:
    model: str  # the model's canonical name (genai-prices id, else as requested)
    provider: str | None
    rules: tuple[PriceRule, ...]
    fallback: PriceRule | None = None
    info: ModelInfo | None = None
    genai_provider: Provider | None = None
    #: True when the price never depends on the time; `constant` is then the price (None: unknown).
    fixed: bool = field(init=False)
    constant: PriceSheet | None = field(init=False)

    def __post_init__(self) -> None:
        first = self.rules[0] if self.rules else self.fallback
        fixed = first is None or (first.start is None and first.daily is None)
        object.__setattr__(self, "fixed", fixed)
        object.__setattr__(self, "constant", first.sheet if fixed and first is not None else None)

    @property
    def known(self) -> bool:
        return bool(self.rules) or self.fallback is not None

    def rule_at(self, at: datetime | None = None) -> PriceRule | None:
        at = _aware(at)
        for rule in self.rules:
            if rule.active(at):
                return rule
        return self.fallback

    def sheet_at(self, at: datetime | None = None) -> PriceSheet | None:
        rule = self.rule_at(at)
        return rule.sheet if rule is not None else None


def _aware(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    if at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    return at


def _midnight(day: date | None) -> datetime | None:
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC)


def override_matches(override: Override, names: Iterable[str], provider: str | None) -> bool:
    """Whether an override prices one of `names` at `provider` (None: any provider)."""
    wanted = override.provider
    if wanted is not None and provider is not None and wanted.lower() != provider.lower():
        return False
    pattern = override.model.lower()
    return any(fnmatch.fnmatchcase(name.lower(), pattern) for name in names)


def _override_tiers(override: Override) -> tuple[tuple[int, dict[str, Decimal]], ...]:
    return override.tiers


def _precedence(override: Override) -> tuple[date, bool, bool, int]:
    """Higher wins: most recently effective, then exact before glob, named provider, later in file."""
    return (override.effective_from or date.min, not override.is_glob, override.provider is not None,
            override.index)


def _segments(start: date | None, variants: Sequence[genai.VariantRule]
              ) -> list[tuple[date | None, tuple[genai.VariantRule, ...]]]:
    """A genai-prices condition split where request variants start: (start, variants in force)."""
    later = sorted({v.start for v in variants if v.start is not None and (start is None or v.start > start)})
    out: list[tuple[date | None, tuple[genai.VariantRule, ...]]] = []
    for begin in (start, *later):
        active = tuple(v for v in variants
                       if v.start is None or (begin is not None and v.start <= begin))
        out.append((begin, active))
    return out


def _override_units(model: str, override: Override) -> tuple[tuple[str, Decimal], ...]:
    """The override's declared unit prices; an override of an Anthropic model without a 1-hour
    cache-write price keeps Anthropic's rule (2 x input)."""
    units = dict(override.units)
    if "cache_write_1h" not in units and ("claude" in model.lower()
                                          or (override.provider or "").lower() == "anthropic"):
        units["cache_write_1h"] = override.input * genai.ANTHROPIC_1H_WRITE_FACTOR
    return tuple(units.items())


def build_history(
    model: str,
    provider: str | None,
    overrides: Sequence[Override],
    found: tuple[Provider, ModelInfo] | None,
) -> PriceHistory:
    """Compile the history of `model` at `provider` (None: wherever genai-prices finds it)."""
    rules: list[PriceRule] = []
    genai_provider, info = found if found is not None else (None, None)
    effective_provider = provider if provider is not None else (genai_provider.id if genai_provider else None)
    names = [model] if info is None or info.id.lower() == model.lower() else [model, info.id]
    matching = [o for o in overrides if override_matches(o, names, effective_provider)]
    matching.sort(key=_precedence, reverse=True)
    canonical = info.id if info is not None else model
    for override in matching:
        sheet = PriceSheet(
            model=canonical if not override.is_glob else model,
            provider=override.provider or effective_provider or "custom",
            input=override.input, output=override.output, cache_read=override.cache_read,
            cache_write=override.cache_write, reasoning=override.reasoning, tiers=_override_tiers(override),
            source="override", effective_from=override.effective_from, units=_override_units(canonical, override),
        )
        notes = (override.note,) if override.note else ()
        rules.append(PriceRule(sheet, "override", start=_midnight(override.effective_from), notes=notes,
                               override=override))
    fallback: PriceRule | None = None
    if genai_provider is not None and info is not None:
        variants = genai.variants_of(info)
        compiled = []
        for rule in genai.rules_of(info):
            base = PriceRule(None, "genai-prices", start=_midnight(rule.start), daily=rule.daily).condition
            for start, active in _segments(rule.start, variants):
                price = genai.convert(rule.price, model=info.id, provider=genai_provider.id,
                                      effective_from=start, variants=active)
                label = None if start == rule.start else f"{base}; its variants from {start}"
                compiled.append(PriceRule(price.sheet, "genai-prices", start=_midnight(start), daily=rule.daily,
                                          not_metered=price.not_metered, notes=price.notes, label=label))
        rules.extend(reversed(compiled))
        fallback = compiled[0]
    return PriceHistory(canonical, effective_provider, tuple(rules), fallback, info, genai_provider)
