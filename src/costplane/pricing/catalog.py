"""The price catalog: genai-prices' bundled table plus the overrides of costplane.yaml.

The gateway calls `Catalog.resolve(model, provider, at)` on every request. The
first call for a (provider, model) compiles its price history (matching, overrides,
conversion to PriceSheets); later calls are a dict hit and, for models whose price
changes over time, a few datetime comparisons.
"""

from __future__ import annotations

import contextlib
import difflib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from costplane.pricing import genai
from costplane.pricing.config import PricingConfig
from costplane.pricing.describe import PriceDetail, describe
from costplane.pricing.genai import NotMetered
from costplane.pricing.history import PriceHistory, PriceRule, build_history
from costplane.pricing.types import PriceSheet, UnknownPrice

__all__ = ["Catalog", "ModelEntry"]

_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One row of `Catalog.models()`: a model's price at one instant (sheet None: not priced)."""

    provider: str  # genai-prices provider id, an override's provider, or "*" for any
    model: str  # genai-prices model id, or an override's name/glob
    name: str | None
    sheet: PriceSheet | None
    source: str  # "genai-prices" | "override"
    effective_from: date | None = None
    not_metered: tuple[NotMetered, ...] = ()
    notes: tuple[str, ...] = ()


class Catalog:
    """Prices of LLM tokens. Safe to share between threads: the caches are dicts of immutable values;
    two threads compiling the same history at once both compute it, one result is kept."""

    def __init__(self, config: PricingConfig | None = None, *, cache_size: int = _CACHE_SIZE) -> None:
        self._config = config or PricingConfig()
        self._cache: dict[tuple[str | None, str], PriceHistory] = {}
        self._defaults: dict[tuple[str | None, str], PriceSheet] = {}
        self._cache_size = cache_size
        self._deny = self._config.unknown_price.action != "charge"

    @classmethod
    def load(cls, config: PricingConfig | None = None) -> Catalog:
        """A catalog over the bundled genai-prices data (never fetched) and `config`'s overrides."""
        genai.providers()  # load the bundled snapshot now, not on the first request
        return cls(config)

    @property
    def config(self) -> PricingConfig:
        return self._config

    @property
    def data_version(self) -> str:
        return genai.data_version()

    # --- the hot path -----------------------------------------------------------------------------

    def history(self, model: str, provider: str | None = None) -> PriceHistory:
        """The compiled price history of `model` at `provider` (cached)."""
        key = (provider, model)
        history = self._cache.get(key)
        if history is None:
            found = genai.find_model(model, provider)
            history = build_history(model, provider, self._config.overrides, found)
            if len(self._cache) >= self._cache_size:  # bounded: model names come from requests
                _evict_oldest(self._cache)
            self._cache[key] = history
        return history

    def lookup(self, model: str, provider: str | None = None, at: datetime | None = None) -> PriceSheet:
        """The price of `model` at instant `at` (UTC; None = now). Raises UnknownPrice."""
        history = self._cache.get((provider, model)) or self.history(model, provider)
        sheet = history.constant if history.fixed else history.sheet_at(at)
        if sheet is None:
            raise UnknownPrice(model, provider)
        return sheet

    def resolve(self, model: str, provider: str | None = None, at: datetime | None = None) -> PriceSheet:
        """`lookup` with the unknown-price rule applied: deny raises UnknownPrice; charge returns the
        declared default sheet with flagged_default=True."""
        history = self._cache.get((provider, model)) or self.history(model, provider)
        sheet = history.constant if history.fixed else history.sheet_at(at)
        if sheet is not None:
            return sheet
        if self._deny:
            raise UnknownPrice(model, provider)
        return self._default(model, provider)

    def _default(self, model: str, provider: str | None) -> PriceSheet:
        key = (provider, model)
        sheet = self._defaults.get(key)
        if sheet is None:
            rule = self._config.unknown_price
            assert rule.input is not None and rule.output is not None
            sheet = PriceSheet(
                model=model, provider=provider or "unknown", input=rule.input, output=rule.output,
                cache_read=rule.cache_read, cache_write=rule.cache_write, reasoning=rule.reasoning,
                source="unknown_price default", flagged_default=True,
            )
            if len(self._defaults) >= self._cache_size:
                _evict_oldest(self._defaults)
            self._defaults[key] = sheet
        return sheet

    # --- listing ----------------------------------------------------------------------------------

    def models(
        self, provider: str | None = None, search: str | None = None, at: datetime | None = None
    ) -> list[ModelEntry]:
        """Every genai-prices model and every override, with its price at `at` (None = now).

        `provider` filters by provider id (overrides without a provider always show);
        `search` is a case-insensitive substring of the model id or name.
        """
        needle = (search or "").lower()
        wanted = provider.lower() if provider else None
        out: list[ModelEntry] = []
        overrides = self._config.overrides
        applied: set[int] = set()
        for source in genai.providers():
            if wanted is not None and source.id != wanted:
                continue
            for info in source.models:
                if needle and needle not in info.id.lower() and needle not in (info.name or "").lower():
                    continue
                history = build_history(info.id, source.id, overrides, (source, info))
                applied.update(r.override.index for r in history.rules
                               if r.override is not None and not r.override.is_glob)
                out.append(_entry(source.id, info.id, info.name, history.rule_at(at)))
        for override in overrides:
            if override.index in applied:
                continue  # shown as the price of the genai-prices model it overrides
            if override.provider is not None and wanted is not None and override.provider.lower() != wanted:
                continue
            if needle and needle not in override.model.lower():
                continue
            history = build_history(override.model, override.provider, (override,), None)
            rule = history.rules[0]
            out.append(_entry(override.provider or "*", override.model, None, rule))
        return out

    def describe(self, model: str, provider: str | None = None, at: datetime | None = None) -> PriceDetail:
        """Everything known about the price of `model`: see `PriceDetail`. Raises UnknownPrice when
        neither genai-prices nor an override knows the model."""
        return describe(self, model, provider, at)

    def suggest(self, model: str, provider: str | None = None, limit: int = 5) -> list[str]:
        """Close matches for an unknown model name (difflib), to help with typos."""
        names = {entry.model for entry in self.models(provider)}
        return difflib.get_close_matches(model, sorted(names), n=limit, cutoff=0.6)


def _entry(provider: str, model: str, name: str | None, rule: PriceRule | None) -> ModelEntry:
    if rule is None:
        return ModelEntry(provider, model, name, None, "genai-prices")
    effective = rule.override.effective_from if rule.override is not None else (
        rule.start.date() if rule.start is not None else None)
    return ModelEntry(provider, model, name, rule.sheet, rule.source, effective, rule.not_metered, rule.notes)


def _evict_oldest(cache: dict[tuple[str | None, str], Any]) -> None:
    # another thread may change the dict meanwhile: then this eviction is skipped
    with contextlib.suppress(RuntimeError, StopIteration):
        cache.pop(next(iter(cache)), None)
