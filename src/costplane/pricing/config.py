"""The `pricing:` section of costplane.yaml: price overrides, private models, unknown-price rule.

    pricing:
      overrides:
        - model: acme-private-llm      # exact name or glob (acme-*), case-insensitive
          provider: internal           # optional
          input: "0.50"                # USD per million tokens
          output: "1.50"
          cache_read: "0.05"           # optional: cache_read, cache_write, reasoning
          tiers:                       # optional cliff tiers, by the call's input tokens
            - {above: 200000, input: "1.00", output: "3.00"}
          effective_from: 2026-01-01   # optional, 00:00 UTC of that date
          note: contract price         # optional, shown by `costplane prices show`
      unknown_price: {action: deny}    # or {action: charge, input: "10", output: "30"}

Prices are parsed exactly: strings and integers as written, YAML floats through
their shortest decimal repr (`Decimal(str(x))`, so `0.1` is 0.1, not the binary
float). Negative, NaN, infinite, boolean and non-numeric values are refused, and so
are prices finer than 1e-9 USD per million tokens (1e-15 USD per token).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from costplane.pricing.skuconfig import SkuOverride, parse_region_fallback, parse_sku_overrides
from costplane.pricing.types import TOKEN_TYPES
from costplane.pricing.units import CORE_UNITS, UNITS, unit_label

__all__ = ["Override", "PricingConfig", "PricingConfigError", "UnknownPriceRule", "parse_price"]

_GLOB = re.compile(r"[*?\[]")
_OVERRIDE_KEYS = ("model", "provider", *TOKEN_TYPES, "tiers", "effective_from", "note", "units")
_TIER_KEYS = ("above", *TOKEN_TYPES)
_RULE_KEYS = ("action", *TOKEN_TYPES)


class PricingConfigError(ValueError):
    """The pricing section is invalid; each line of the message names file[:line], field and expectation."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = list(messages)
        super().__init__("\n".join(messages))


@dataclass(frozen=True, slots=True)
class Override:
    """A declared price for a model (or a glob of models), optionally from a date on."""

    model: str
    input: Decimal
    output: Decimal
    provider: str | None = None
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    reasoning: Decimal | None = None
    tiers: tuple[tuple[int, dict[str, Decimal]], ...] = ()
    effective_from: date | None = None
    note: str | None = None
    index: int = 0  # position in pricing.overrides
    #: other billed units (pricing.units names, e.g. web_searches), USD per the unit's quantum
    units: tuple[tuple[str, Decimal], ...] = ()

    @property
    def is_glob(self) -> bool:
        return _GLOB.search(self.model) is not None

    @property
    def path(self) -> str:
        return f"pricing.overrides[{self.index}]"


@dataclass(frozen=True, slots=True)
class UnknownPriceRule:
    """What to do with a model that has no known price: deny it, or charge a declared default."""

    action: str = "deny"  # deny | charge
    input: Decimal | None = None
    output: Decimal | None = None
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    reasoning: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PricingConfig:
    overrides: tuple[Override, ...] = ()
    unknown_price: UnknownPriceRule = UnknownPriceRule()
    source: str = "costplane.yaml"
    skus: tuple[SkuOverride, ...] = ()  # pricing.skus: machine/GPU SKU prices (pricing/skuconfig.py)
    sku_region_fallback: tuple[str, ...] = ()  # providers priced from the nearest region ("*" = all)

    @classmethod
    def parse(
        cls, data: Any, *, source: str = "costplane.yaml", lines: Mapping[str, int] | None = None
    ) -> PricingConfig:
        """Validate the value of the `pricing:` key (None means defaults); raise PricingConfigError."""
        parser = _Parser(source, lines or {})
        config = parser.config(data)
        if parser.messages:
            raise PricingConfigError(parser.messages)
        return config


def parse_price(value: Any) -> Decimal:
    """A price in USD per million tokens, exact; ValueError naming what was expected."""
    expected = f"expected a number of USD per million tokens such as \"0.50\", got {_shown(value)}"
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValueError(expected)
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip().replace("_", ""))
    except InvalidOperation:
        raise ValueError(expected) from None
    if not number.is_finite():
        raise ValueError(f"expected a finite number of USD per million tokens, got {value!r}")
    if number < 0:
        raise ValueError(f"expected a price of zero or more USD per million tokens, got {value!r}")
    if number and int(number.normalize().as_tuple().exponent) < -9:
        raise ValueError(f"expected at most 9 decimal places (1e-15 USD per token), got {value!r}")
    return number + 0  # normalise -0


class _Parser:
    def __init__(self, source: str, lines: Mapping[str, int]) -> None:
        self.source = source
        self.lines = lines
        self.messages: list[str] = []

    def error(self, path: str, message: str) -> None:
        line = None
        probe = path
        while probe and line is None:  # the line of the field, else of its closest parent
            line = self.lines.get(probe)
            probe = re.sub(r"(\.[^.\[\]]+|\[\d+\])$", "", probe) if probe != "pricing" else ""
        where = f"{self.source}:{line}" if line else self.source
        self.messages.append(f"{where}: {path}: {message}")

    def mapping(self, path: str, value: Any, allowed: tuple[str, ...], what: str) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.error(path, f"expected {what}, got {_shown(value)}")
            return None
        for key in value:
            if key not in allowed:
                self.error(f"{path}.{key}", f"unknown field; expected one of {', '.join(allowed)}")
        return value

    def price(self, path: str, value: Any) -> Decimal | None:
        try:
            return parse_price(value)
        except ValueError as exc:
            self.error(path, str(exc))
            return None

    def prices(self, path: str, raw: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for name in names:
            if name in raw:
                price = self.price(f"{path}.{name}", raw[name])
                if price is not None:
                    out[name] = price
        return out

    def config(self, data: Any) -> PricingConfig:
        if data is None:
            return PricingConfig(source=self.source)
        raw = self.mapping("pricing", data, ("overrides", "unknown_price", "skus", "sku_region_fallback"),
                           "a mapping with overrides, unknown_price, skus and sku_region_fallback")
        if raw is None:
            return PricingConfig(source=self.source)
        overrides: list[Override] = []
        items = raw.get("overrides") or []
        if not isinstance(items, list):
            self.error("pricing.overrides", f"expected a list of overrides, got {_shown(items)}")
            items = []
        seen: dict[tuple[str, str | None, date | None], int] = {}
        for index, item in enumerate(items):
            override = self.override(index, item)
            if override is None:
                continue
            key = (override.model.lower(), (override.provider or "").lower() or None, override.effective_from)
            if key in seen:
                self.error(override.path, f"duplicates pricing.overrides[{seen[key]}] (same model, provider "
                           "and effective_from)")
            seen[key] = index
            overrides.append(override)
        rule = self.rule(raw.get("unknown_price", "deny"))
        skus = parse_sku_overrides(raw.get("skus"), self.error)
        fallback = parse_region_fallback(raw.get("sku_region_fallback"), self.error)
        return PricingConfig(tuple(overrides), rule, self.source, skus, fallback)

    def override(self, index: int, item: Any) -> Override | None:
        path = f"pricing.overrides[{index}]"
        raw = self.mapping(path, item, _OVERRIDE_KEYS, "a mapping with model, input and output")
        if raw is None:
            return None
        ok = True
        model, provider, note = raw.get("model"), raw.get("provider"), raw.get("note")
        if not isinstance(model, str) or not model.strip():
            self.error(f"{path}.model", f"expected a model name or glob such as acme-*, got {_shown(model)}")
            ok = False
        if provider is not None and (not isinstance(provider, str) or not provider.strip()):
            self.error(f"{path}.provider", f"expected a provider name such as openai, got {_shown(provider)}")
            ok = False
        if note is not None and not isinstance(note, str):
            self.error(f"{path}.note", f"expected text, got {_shown(note)}")
            ok = False
        for required in ("input", "output"):
            if required not in raw:
                self.error(f"{path}.{required}", "missing: expected USD per million tokens such as \"0.50\"")
                ok = False
        prices = self.prices(path, raw, TOKEN_TYPES)
        tiers = self.tiers(f"{path}.tiers", raw.get("tiers"))
        units = self.units(f"{path}.units", raw.get("units"))
        date_ok, effective = self.effective_from(f"{path}.effective_from", raw.get("effective_from"))
        if (not ok or not date_ok or "input" not in prices or "output" not in prices or tiers is None
                or units is None):
            return None
        assert isinstance(model, str)
        return Override(
            model=model.strip(), provider=provider.strip() if isinstance(provider, str) else None,
            input=prices["input"], output=prices["output"], cache_read=prices.get("cache_read"),
            cache_write=prices.get("cache_write"), reasoning=prices.get("reasoning"), tiers=tiers,
            effective_from=effective, note=note, index=index, units=units,
        )

    def units(self, path: str, value: Any) -> tuple[tuple[str, Decimal], ...] | None:
        """`units: {web_searches: "10", cache_write_1h: "6"}`: prices of the other billed units."""
        if value is None:
            return ()
        if not isinstance(value, Mapping):
            self.error(path, f"expected a mapping of unit -> price such as {{web_searches: \"10\"}}, got "
                       f"{_shown(value)}")
            return None
        out: list[tuple[str, Decimal]] = []
        failed = False
        for name, raw in value.items():
            if not isinstance(name, str) or name not in UNITS or name in CORE_UNITS:
                known = ", ".join(sorted(n for n in UNITS if n not in CORE_UNITS)[:8])
                self.error(f"{path}.{name}", f"unknown billed unit (the five token types go at the top level; "
                           f"others include {known}, …)")
                failed = True
                continue
            try:
                out.append((name, parse_price(raw)))
            except ValueError:
                self.error(f"{path}.{name}", f"expected a price of zero or more USD {unit_label(name)}, got "
                           f"{_shown(raw)}")
                failed = True
        return None if failed else tuple(out)

    def tiers(self, path: str, value: Any) -> tuple[tuple[int, dict[str, Decimal]], ...] | None:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.error(path, f"expected a list of tiers such as [{{above: 200000, input: \"6\"}}], got "
                       f"{_shown(value)}")
            return None
        out: list[tuple[int, dict[str, Decimal]]] = []
        failed = False
        for index, item in enumerate(value):
            where = f"{path}[{index}]"
            raw = self.mapping(where, item, _TIER_KEYS, "a mapping with above and prices")
            if raw is None:
                failed = True
                continue
            above = raw.get("above")
            if isinstance(above, bool) or not isinstance(above, int) or above < 0:
                self.error(f"{where}.above", f"expected a number of input tokens (integer >= 0), got "
                           f"{_shown(above)}")
                failed = True
                continue
            if out and above <= out[-1][0]:
                self.error(f"{where}.above", f"expected tiers in ascending order of above, got {above} after "
                           f"{out[-1][0]}")
                failed = True
            prices = self.prices(where, raw, TOKEN_TYPES)
            if not prices:
                self.error(where, f"expected at least one price ({', '.join(TOKEN_TYPES)})")
                failed = True
            out.append((above, prices))
        return None if failed else tuple(out)

    def effective_from(self, path: str, value: Any) -> tuple[bool, date | None]:
        """(valid, the date or None when absent)."""
        if value is None:
            return True, None
        if isinstance(value, datetime):
            self.error(path, f"expected a date such as 2026-01-01 (prices change at 00:00 UTC), got "
                       f"{value!r}")
            return False, None
        if isinstance(value, date):
            return True, value
        if isinstance(value, str):
            try:
                return True, date.fromisoformat(value.strip())
            except ValueError:
                pass
        self.error(path, f"expected a date such as 2026-01-01, got {_shown(value)}")
        return False, None

    def rule(self, value: Any) -> UnknownPriceRule:
        path = "pricing.unknown_price"
        if isinstance(value, str):
            value = {"action": value}
        raw = self.mapping(path, value, _RULE_KEYS,
                           "{action: deny} or {action: charge, input: ..., output: ...}")
        if raw is None:
            return UnknownPriceRule()
        action = raw.get("action", "deny")
        prices = self.prices(path, raw, TOKEN_TYPES)
        if action == "deny":
            for name in prices:
                self.error(f"{path}.{name}", "prices are only used with action: charge")
            return UnknownPriceRule()
        if action != "charge":
            self.error(f"{path}.action", f"expected deny or charge, got {_shown(action)}")
            return UnknownPriceRule()
        for required in ("input", "output"):
            if required not in raw:
                self.error(f"{path}.{required}", "missing: action charge needs a default price in USD per "
                           "million tokens")
        if prices.get("input") == 0 and prices.get("output") == 0:
            self.error(path, "the default price of unknown models cannot be zero (no silent $0); use "
                       "action: deny, or declare free models in pricing.overrides")
        if "input" not in prices or "output" not in prices:
            return UnknownPriceRule()
        return UnknownPriceRule("charge", prices["input"], prices["output"], prices.get("cache_read"),
                                prices.get("cache_write"), prices.get("reasoning"))


def _shown(value: Any) -> str:
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"
