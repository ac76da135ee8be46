"""The billed units costplane meters: every unit the genai-prices data can price.

A unit has a costplane name (`input`, `cache_write_1h`, `input_audio`, `web_searches`, …), the
genai-prices usage key and price key it corresponds to, how many units its price is quoted per
(tokens: 1,000,000; tool calls and requests: 1,000; audio: 3,600 seconds), a direction (input,
output, or none for fees) and its ancestors. Counts nest like genai-prices' dimensions: a count
of `cache_audio_read` tokens is also counted in `cache_read`, `input_audio` and `input`; a unit
without a price of its own is charged at its nearest priced ancestor's rate; a unit with no
priced ancestor at all (a fee such as `web_searches`) and a non-zero count is *unpriced* — the
unknown-price rule applies, never a silent $0.

The table is read from the installed genai-prices unit registry, so a unit added to the data is
metered without a code change; the five historic token types keep their names. Built-in tool fees
the registry has no unit for (`EXTRA_UNITS`: `image_generations`, `maps_searches`) are added under
costplane's names, unpriced unless an override prices them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from genai_prices.units import UnitDef, _get_registry

__all__ = [
    "CORE_UNITS",
    "EXTRA_UNITS",
    "UNITS",
    "Unit",
    "unit_by_price_key",
    "unit_label",
]

#: costplane's historic token types -> genai-prices usage keys (TokenUsage fields).
CORE_UNITS: Mapping[str, str] = MappingProxyType({
    "input": "input_tokens",
    "cache_read": "cache_read_tokens",
    "cache_write": "cache_write_tokens",
    "output": "output_tokens",
    "reasoning": "output_reasoning_tokens",
})


@dataclass(frozen=True, slots=True)
class Unit:
    """One billed unit."""

    name: str  # costplane name, e.g. cache_write_1h
    usage_key: str  # genai-prices usage key, e.g. cache_write_1h_tokens
    price_key: str  # genai-prices price key, e.g. cache_write_1h_mtok
    per: int  # prices are quoted per this many units
    direction: str | None  # input | output | None (fees, durations without direction)
    family: str  # tokens | tool_calls | requests | durations | characters | …
    ancestors: frozenset[str]  # costplane names of the units whose counts include this one

    @property
    def is_token(self) -> bool:
        return self.family == "tokens"


def _name(usage_key: str) -> str:
    for name, key in CORE_UNITS.items():
        if key == usage_key:
            return name
    return usage_key.removesuffix("_tokens")


def _build() -> tuple[Mapping[str, Unit], Mapping[str, Unit]]:
    registry = _get_registry()
    defs: dict[str, UnitDef] = dict(registry.units)
    units: dict[str, Unit] = {}
    for usage_key, unit in defs.items():
        ancestors = frozenset(_name(other) for other in registry.ancestor_usage_keys(usage_key))
        units[_name(usage_key)] = Unit(
            name=_name(usage_key), usage_key=usage_key, price_key=unit.price_key, per=unit.per,
            direction=unit.dimensions.get("direction"), family=unit.dimensions.get("family", "other"),
            ancestors=ancestors,
        )
    by_price = {unit.price_key: unit for unit in units.values()}
    return MappingProxyType(units), MappingProxyType(by_price)


#: Fees of built-in tools the genai-prices data has no unit for yet, metered under costplane's own
#: names (per 1,000 calls, no ancestors): no price in the shipped data, so the unknown-price rule
#: applies to them until an override declares one (`units: {image_generations: "40"}`).
EXTRA_UNITS: Mapping[str, Unit] = MappingProxyType({
    "image_generations": Unit("image_generations", "image_generations", "image_generations_kcount", 1000, None,
                              "tool_calls", frozenset()),
    "maps_searches": Unit("maps_searches", "maps_searches", "maps_searches_kcount", 1000, None, "tool_calls",
                          frozenset()),
})


def _with_extra() -> tuple[Mapping[str, Unit], Mapping[str, Unit]]:
    units, by_price = _build()
    extra = {name: unit for name, unit in EXTRA_UNITS.items() if name not in units}
    return (MappingProxyType({**units, **extra}),
            MappingProxyType({**by_price, **{u.price_key: u for u in extra.values()}}))


#: costplane unit name -> Unit, for every unit genai-prices knows and costplane's own tool fees.
UNITS, _BY_PRICE_KEY = _with_extra()


def unit_by_price_key(price_key: str) -> Unit | None:
    return _BY_PRICE_KEY.get(price_key)


def unit_label(name: str) -> str:
    """How a unit's price is quoted, e.g. 'per 1M tokens', 'per 1K web searches'."""
    unit = UNITS.get(name)
    if unit is None:
        return "per unit"
    if unit.is_token:
        return "per 1M tokens" if unit.per == 1_000_000 else f"per {unit.per:,} tokens"
    what = unit.usage_key.replace("_", " ")
    if unit.family == "durations":
        return "per hour" if unit.per == 3600 else f"per {unit.per:,} seconds"
    return f"per {unit.per:,} {what}".replace("per 1,000 ", "per 1K ").replace("per 1,000,000 ", "per 1M ")
