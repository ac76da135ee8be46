"""Token usage and the price sheet of one model, as the rest of costplane sees them.

Prices are Decimal USD per the unit's quantum (tokens: per million; tool calls and requests:
per thousand; see `pricing.units`). Costs are integers of nano-USD. `PriceSheet.cost_nano` is
on the gateway's hot path, so the sheet pre-computes each rate as femto-USD per unit and the
order in which nested counts are split into the parts each rate applies to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction

from costplane.pricing.units import CORE_UNITS, UNITS

__all__ = [
    "TOKEN_TYPES",
    "PriceSheet",
    "TokenUsage",
    "UnknownPrice",
    "UnknownUnitPrice",
    "Variant",
]

#: Token types that can carry their own price in `costplane.yaml` overrides.
TOKEN_TYPES: tuple[str, ...] = ("input", "cache_read", "cache_write", "output", "reasoning")

_FEMTO_PER_USD = 10**15
_FEMTO_PER_USD_PER_MTOK = 10**9  # USD/MTok -> femto-USD/token
_FEMTO_PER_NANO = 10**6
_CORE_FIELDS = {"input": "input_tokens", "output": "output_tokens", "cache_read": "cache_read_tokens",
                "cache_write": "cache_write_tokens", "reasoning": "reasoning_tokens"}


class UnknownPrice(LookupError):
    """No price is known for this model (and no default is declared)."""

    def __init__(self, model: str, provider: str | None) -> None:
        self.model = model
        self.provider = provider
        where = f" from provider {provider!r}" if provider else ""
        super().__init__(f"no known price for model {model!r}{where}")


class UnknownUnitPrice(UnknownPrice):
    """The model is priced, but a billed unit the call enables (a tool billed per call) is not."""

    def __init__(self, model: str, provider: str | None, units: tuple[str, ...]) -> None:
        super().__init__(model, provider)
        self.units = units
        self.args = (f"no known price for {', '.join(units)} of model {model!r}",)


def _pairs(value: Iterable[tuple[str, object]] | Mapping[str, object]) -> tuple[tuple[str, object], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((str(k), v) for k, v in items))


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Billed units of one call, in the genai-prices convention.

    input_tokens is ALL prompt tokens, including cache reads and cache writes;
    output_tokens is ALL generated tokens, including reasoning. The sub-counts say
    how many of those were of the special kind. `units` carries every other billed unit
    by its costplane name (`pricing.units`), nested the same way: `cache_write_1h` tokens are
    also counted in `cache_write_tokens`, `input_audio` in `input_tokens`, `output_audio` in
    `output_tokens`; fees count calls (`web_searches`, `requests` — one per call unless given).
    `conditions` are the price conditions the call was served under, as genai-prices names
    them: `service_tier` (priority, flex, …) and `processing` (batch).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    units: tuple[tuple[str, int], ...] = ()
    conditions: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                     "reasoning_tokens"):
            _check_count(name, getattr(self, name))
        units: tuple[tuple[str, int], ...] = ()
        for name, value in _pairs(self.units):
            if name not in UNITS or name in CORE_UNITS:
                raise ValueError(f"unknown billed unit {name!r} (see costplane.pricing.units.UNITS)")
            _check_count(name, value)
            if value != 0 or name == "requests":
                units += ((name, int(str(value))),)
        object.__setattr__(self, "units", units)
        conditions = _pairs(self.conditions)
        for key, value in conditions:
            if not isinstance(value, str) or not value:
                raise ValueError(f"condition {key!r} must be a non-empty string, got {value!r}")
        object.__setattr__(self, "conditions", conditions)
        if self.cache_read_tokens + self.cache_write_tokens > self.input_tokens:
            raise ValueError("cache_read_tokens + cache_write_tokens exceed input_tokens")
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError("reasoning_tokens exceed output_tokens")
        for name, count in units:
            for ancestor in UNITS[name].ancestors:
                if ancestor != "requests" and count > self.count(ancestor):
                    raise ValueError(f"{name} ({count}) exceeds {ancestor} ({self.count(ancestor)})")

    def count(self, name: str) -> int:
        """The count of a billed unit by costplane name (requests: 1 per call unless given)."""
        core = _CORE_FIELDS.get(name)
        if core is not None:
            return int(getattr(self, core))
        for key, value in self.units:
            if key == name:
                return value
        return 1 if name == "requests" else 0

    def counts(self) -> dict[str, int]:
        """Every non-zero count by unit name (requests only when given)."""
        out = {name: getattr(self, f) for name, f in _CORE_FIELDS.items() if getattr(self, f)}
        out.update((k, v) for k, v in self.units if v)
        return out

    def condition(self, key: str) -> str | None:
        return next((v for k, v in self.conditions if k == key), None)

    @property
    def uncached_input_tokens(self) -> int:
        return self.input_tokens - self.cache_read_tokens - self.cache_write_tokens

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def _check_count(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


_Femto = int | Fraction
#: (unit name, TokenUsage field or None, femto-USD per unit, positions of the priced units nested
#: inside it), most nested first
_Plan = tuple[tuple[str, str | None, _Femto, tuple[int, ...]], ...]


@dataclass(frozen=True, slots=True)
class Variant:
    """Prices that replace the sheet's when a call is served under `when` (genai-prices variants)."""

    when: tuple[tuple[str, str], ...]
    sheet: PriceSheet

    def matches(self, conditions: tuple[tuple[str, str], ...]) -> bool:
        return all(pair in conditions for pair in self.when)

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.when)


@dataclass(frozen=True, slots=True)
class PriceSheet:
    """The effective prices of one model at one moment.

    `input`/`output` are required (USD per 1M tokens). Every other unit falls back to the rate of
    its nearest priced ancestor (cache_read and cache_write to input, cache_write_1h to
    cache_write, reasoning and output_audio to output, …). `units` prices the units beyond the
    five token types, USD per the unit's quantum. `tiers` are genai-prices "cliff" tiers: when
    the call's input_tokens exceed `start`, every unit of that kind is charged at the tier's rate
    (sorted ascending by start). `variants` are the prices of service tiers and batch processing.
    """

    model: str
    provider: str
    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    reasoning: Decimal | None = None
    tiers: tuple[tuple[int, dict[str, Decimal]], ...] = ()  # (start, declared rates that change)
    source: str = "genai-prices"
    effective_from: date | None = None
    flagged_default: bool = False  # true when this is a declared default for an unknown model
    units: tuple[tuple[str, Decimal], ...] = ()  # other units' prices, USD per the unit's quantum
    variants: tuple[Variant, ...] = ()
    #: (tier start or -1 for the base, plan, plan of the token fields alone: for usages without other
    #: units, when no per-request fee applies)
    _plans: tuple[tuple[int, _Plan, _Plan | None], ...] = field(default=(), init=False, repr=False,
                                                                  compare=False)
    #: (tier start or -1, dearest input-token rate, dearest output-token rate, request fee, declared rates
    #: of the units counted per call: tool calls and the like), femto-USD
    _max_rates: tuple[tuple[int, _Femto, _Femto, _Femto, tuple[tuple[str, _Femto], ...]], ...] = field(
        default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        units = tuple(sorted(_pairs(self.units)))
        for name, _ in units:
            if name not in UNITS or name in CORE_UNITS:
                raise ValueError(f"unknown billed unit {name!r} in the prices of {self.model}")
        object.__setattr__(self, "units", units)
        plans = []
        levels = []
        for start in (-1, *(start for start, _ in self.tiers)):
            declared = self.declared(start + 1)
            femto = {name: _femto(name, rate) for name, rate in declared.items()}
            core = None if "requests" in femto else _plan({n: r for n, r in femto.items() if n in _CORE_FIELDS})
            plans.append((start, _plan(femto), core))
            in_rate = max(r for n, r in femto.items() if UNITS[n].is_token and UNITS[n].direction == "input")
            out_rate = max(r for n, r in femto.items() if UNITS[n].is_token and UNITS[n].direction == "output")
            counted = tuple((n, r) for n, r in sorted(femto.items()) if not UNITS[n].is_token and n != "requests")
            levels.append((start, in_rate, out_rate, femto.get("requests", 0), counted))
        object.__setattr__(self, "_plans", tuple(plans))
        object.__setattr__(self, "_max_rates", tuple(levels))

    def declared(self, input_tokens: int = 0) -> dict[str, Decimal]:
        """The rates the sheet declares (no fallbacks) at this call size, by unit name."""
        declared: dict[str, Decimal] = {"input": self.input, "output": self.output}
        for name in ("cache_read", "cache_write", "reasoning"):
            value = getattr(self, name)
            if value is not None:
                declared[name] = value
        declared.update(self.units)
        for start, overrides in self.tiers:
            if input_tokens > start:
                declared.update(overrides)
        return declared

    def rates(self, input_tokens: int = 0) -> dict[str, Decimal]:
        """The rate of the five token types (USD per 1M tokens) and of every other priced unit
        (USD per its quantum) at this call size.

        Tiers apply to the *declared* rates first; only then do undeclared rates fall back
        (cache_read/cache_write to input, reasoning to output), so a tier that raises `input`
        raises an undeclared cache rate with it.
        """
        declared = self.declared(input_tokens)
        out = {
            "input": declared["input"],
            "cache_read": declared.get("cache_read", declared["input"]),
            "cache_write": declared.get("cache_write", declared["input"]),
            "output": declared["output"],
            "reasoning": declared.get("reasoning", declared["output"]),
        }
        out.update((name, rate) for name, rate in declared.items() if name not in out)
        return out

    def priced(self, name: str) -> bool:
        """Whether a count of unit `name` has a price here (its own or an ancestor's)."""
        if name == "requests" or name in CORE_UNITS:
            return True
        declared = self.declared(0)
        unit = UNITS.get(name)
        return unit is not None and (name in declared or any(a in declared for a in unit.ancestors))

    def for_conditions(self, conditions: tuple[tuple[str, str], ...]) -> PriceSheet:
        """The sheet that prices a call served under `conditions` (the first matching variant)."""
        if conditions and self.variants:
            for variant in self.variants:
                if variant.matches(conditions):
                    return variant.sheet
        return self

    def unpriced(self, usage: TokenUsage) -> tuple[str, ...]:
        """The units of `usage` that cost money and have no price here (the unknown-price rule)."""
        sheet = self.for_conditions(usage.conditions)
        return tuple(name for name, _ in usage.units if name != "requests" and not sheet.priced(name))

    def cost_nano(self, usage: TokenUsage) -> int:
        """Exact cost of `usage` under its conditions, rounded half-up to a whole nano-USD.
        Units with no price (see `unpriced`) add nothing here; callers flag them."""
        sheet = self.for_conditions(usage.conditions) if usage.conditions else self
        plans = sheet._plans
        level = plans[0]
        if len(plans) > 1:
            for tier in plans[1:]:
                if usage.input_tokens > tier[0]:
                    level = tier
        extra = dict(usage.units) if usage.units else None
        plan = level[1] if extra is not None or level[2] is None else level[2]
        leaves: list[int] = []
        total: _Femto = 0
        # inconsistent provider counts (nested parts summing above their total) never charge less
        # than the parts: the remainder is clamped at 0
        for name, field_name, femto, nested in plan:
            if field_name is not None:
                leaf = getattr(usage, field_name)
            elif extra is not None:
                leaf = extra.get(name, 1 if name == "requests" else 0)
            else:
                leaf = 1 if name == "requests" else 0
            for index in nested:
                leaf -= leaves[index]
            if leaf < 0:
                leaf = 0
            leaves.append(leaf)
            if leaf:
                total += leaf * femto
        return int((total + _FEMTO_PER_NANO // 2) // _FEMTO_PER_NANO)

    def max_cost_nano(self, input_tokens: int, output_tokens: int, *, service_tier: str | None = None,
                      conditions: tuple[tuple[str, str], ...] = (), units: Mapping[str, int] | None = None) -> int:
        """Upper bound of a call with at most `input_tokens` input and `output_tokens` output:
        every token at the dearest rate of its side (input: input, cache reads, 5-minute and
        1-hour cache writes, audio/image/video in; output: output, reasoning, audio/image/video
        out) among the tiers such a call can reach, plus the per-request fee; rounded up.

        The service tier counts: a named tier is priced at that tier's variant; `auto` at the
        dearest of all variants (the project's default tier may be priority); no tier at the
        standard price (OpenAI serves the standard tier unless the project is configured
        otherwise). Other requested `conditions` (Anthropic's `speed: fast`) add the variants they
        select. `units` are the most calls of each per-call unit the request can incur (the gateway caps
        them: Anthropic's web search `max_uses`, one search per Chat Completions call with
        `web_search_options`); each adds count x the dearest rate of that unit or of a priced ancestor
        among the same tiers. A unit with no price here adds nothing (the unknown-price rule applies).
        """
        counts = {n: c for n, c in (units or {}).items() if c > 0}
        for name, count in counts.items():
            _check_count(name, count)
        sheets: list[PriceSheet] = [self]
        if self.variants and service_tier is not None:
            if service_tier == "auto":
                sheets.extend(v.sheet for v in self.variants)
            else:
                named = [v.sheet for v in self.variants if ("service_tier", service_tier) in v.when]
                sheets = named[:1] or sheets
        if self.variants and conditions:
            sheets.extend(v.sheet for v in self.variants if v.matches(conditions))
        worst: _Femto = 0
        for sheet in sheets:
            in_rate: _Femto = 0
            out_rate: _Femto = 0
            fee: _Femto = 0
            per_call: dict[str, _Femto] = {}
            for start, tier_in, tier_out, tier_fee, counted in sheet._max_rates:
                if start < input_tokens:  # a tier applies only above its start
                    in_rate, out_rate, fee = max(in_rate, tier_in), max(out_rate, tier_out), max(fee, tier_fee)
                    for name, rate in counted if counts else ():
                        per_call[name] = max(per_call.get(name, 0), rate)
            calls: _Femto = 0
            for name, count in counts.items():
                unit = UNITS.get(name)
                charged = (name, *unit.ancestors) if unit is not None else (name,)
                calls += count * max((per_call.get(n, 0) for n in charged), default=0)
            worst = max(worst, input_tokens * in_rate + output_tokens * out_rate + fee + calls)
        return int(-(-worst // _FEMTO_PER_NANO))


def _plan(femto: Mapping[str, _Femto]) -> _Plan:
    """Most nested first; each entry lists the positions of the priced units nested inside it."""
    names = sorted(femto, key=lambda n: (-len(UNITS[n].ancestors), n))
    return tuple(
        (name, _CORE_FIELDS.get(name), femto[name],
         tuple(i for i, other in enumerate(names) if name in UNITS[other].ancestors))
        for name in names
    )


def _femto(name: str, rate: Decimal) -> _Femto:
    per = UNITS[name].per
    if per == 1_000_000:
        return _to_femto(rate)
    if rate < 0 or not rate.is_finite():
        raise ValueError(f"price {rate} of {name} must be a finite non-negative number")
    exact = Fraction(rate) * _FEMTO_PER_USD / per
    return exact.numerator if exact.denominator == 1 else exact


def _to_femto(rate_per_mtok: Decimal) -> int:
    scaled = rate_per_mtok * _FEMTO_PER_USD_PER_MTOK
    if scaled != scaled.to_integral_value():
        raise ValueError(f"price {rate_per_mtok} USD/MTok has more precision than 1e-15 USD per token")
    return int(scaled)
