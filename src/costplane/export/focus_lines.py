"""Split a cost event into FOCUS charge lines: one per priced unit, each with its own unit price.

FOCUS asks that ListCost = ListUnitPrice × PricingQuantity on every Usage row. A model call
mixes billed units with different prices, so an LLM event becomes one line per billed unit it
used that has a price in its `unit_prices` (input, cache read, 5-minute and 1-hour cache writes,
output, reasoning, audio/image tokens, web searches, request fees, …; see pricing.units), each
counted as the ledger counts it: the unit's count less the counts nested in it that have their
own price. PricingUnit is the unit the price is quoted per ("1000000 Tokens", "1000 Web
Searches", "Hours"), PricingQuantity = count / that quantum, ListUnitPrice = the rate the event
carries (the tier and service-tier variant of that call).
An environment accrual becomes one line per SKU ("Hours", count × hours run), an SDK
resource event one line ("Hours" or "GiB-Hours"), a priced tool call one line ("Requests").

Exactness: ListCost is the exact product (no rounding; decimals of at most 18 places).
BilledCost/EffectiveCost are whole nano-USD that add up, over an event's lines, to exactly
the event's ledger cost (cumulative rounding), so the export's sum of BilledCost is the
ledger's spend. A decomposition is used only when its rounded total equals the ledger cost;
otherwise (a cost recorded without per-unit prices: cache hits, unpriced or estimated spans,
units this exporter does not know) the event is one line of 1 "Requests" at the event's cost,
marked ``x_CostBasis = event``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction

from costplane.ledger.envtypes import EnvironmentRecord
from costplane.ledger.types import CostEvent
from costplane.pricing.units import UNITS, Unit

__all__ = ["ChargeLine", "Environments", "charge_lines", "environment_id"]

_NANO = Decimal(1_000_000_000)
_QUANTITY = Decimal("1e-9")  # PricingQuantity of time-based lines is quantized to 10^-9 of its unit
#: SkuMeter of the historic token types; the rest are named from the unit (cache_write_1h: Cache Write 1h Tokens)
_TOKEN_METERS: Mapping[str, str] = {
    "input": "Input Tokens", "cache_read": "Cache Read Tokens", "cache_write": "Cache Write Tokens",
    "output": "Output Tokens", "reasoning": "Reasoning Tokens",
}  # fmt: skip
_ORDER = {name: index for index, name in enumerate(_TOKEN_METERS)}  # rows in this order, then by name
_TOKEN_KINDS = ("llm",)
_RESOURCE_KINDS = ("gpu", "compute", "storage", "egress")

Environments = Callable[[str], EnvironmentRecord | None]


@dataclass(frozen=True, slots=True)
class ChargeLine:
    """One FOCUS row's price facts."""

    meter: str  # SkuMeter: "Input Tokens", "Hours", "Requests"
    price_key: str  # what the unit price is of: token type, SKU, "call"
    unit: str  # PricingUnit
    quantity: Decimal  # PricingQuantity, in `unit`
    unit_price: Decimal  # ListUnitPrice: USD per one `unit`
    consumed_unit: str  # ConsumedUnit
    consumed: Decimal  # ConsumedQuantity
    billed_nano: int  # BilledCost / EffectiveCost, whole nano-USD
    basis: str  # "unit_prices" | "event"
    sku: str | None = None  # the line's own SKU (machines, GPUs), else the event's model
    span_seconds: Decimal | None = None  # how long the charge ran, when the event says (time-priced lines)
    conditions: tuple[tuple[str, str], ...] = ()  # price conditions the call was served under (service_tier, …)

    @property
    def list_cost(self) -> Decimal:
        return self.unit_price * self.quantity


def _price(text: str | None) -> Decimal | None:
    try:
        value = Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() and value >= 0 else None


def _split(exact: Sequence[Decimal | Fraction], total_nano: int) -> list[int] | None:
    """Whole nano-USD per line, summing to `total_nano`, when the exact costs (USD) round to it."""
    out, previous = [], 0
    decimals = [cost for cost in exact if isinstance(cost, Decimal)]
    if len(decimals) == len(exact):  # the common case: terminating decimals, fast
        running = Decimal(0)
        for cost in decimals:
            running += cost
            rounded = int((running * _NANO).to_integral_value(rounding=ROUND_HALF_UP))
            out.append(rounded - previous)
            previous = rounded
    else:
        fraction = Fraction(0)
        for part in exact:
            fraction += Fraction(part)
            rounded = int((fraction * 10**9 + Fraction(1, 2)).__floor__())
            out.append(rounded - previous)
            previous = rounded
    return out if previous == total_nano and all(n >= 0 for n in out) else None


def _quantity(count: int, per: int) -> Decimal:
    exact = Decimal(count) / Decimal(per)
    return exact if exact == exact.quantize(_QUANTITY) else exact.quantize(_QUANTITY, ROUND_HALF_UP)


def _cost(rate: Decimal, count: int, per: int) -> Decimal | Fraction:
    """rate × count / per, exact: a Decimal when per is a power of ten (tokens, calls), else a Fraction."""
    if str(per).strip("0") == "1":
        return rate * count / per
    return Fraction(rate) * count / per


def _words(name: str) -> str:
    return " ".join(w if w[:1].isdigit() else w.capitalize() for w in name.split("_"))


def _units(unit: Unit) -> tuple[str, str, str]:
    """(SkuMeter, PricingUnit, ConsumedUnit) of a billed unit."""
    if unit.is_token:
        meter = _TOKEN_METERS.get(unit.name) or f"{_words(unit.name)} Tokens"
        return meter, f"{unit.per} Tokens", "Tokens"
    if unit.family == "durations":
        return _words(unit.usage_key), "Hours" if unit.per == 3600 else f"{unit.per} Seconds", "Seconds"
    label = _words(unit.usage_key)
    return label, f"{unit.per} {label}", label


def _token_lines(event: CostEvent) -> list[ChargeLine] | None:
    """One line per billed unit with a price in `unit_prices`, counted as the ledger counts it: a
    unit's own count less the counts nested in it that have their own price (pricing.units)."""
    usage, prices = event.usage, {}
    for name, text in event.unit_prices.items():
        unit, rate = UNITS.get(name), _price(text)
        if unit is None or rate is None:
            return None  # a unit this exporter cannot place: one line at the event's cost
        prices[name] = (unit, rate)
    names = sorted(prices, key=lambda n: (-len(UNITS[n].ancestors), n))
    leaves: dict[str, int] = {}
    for name in names:
        leaves[name] = usage.count(name) - sum(leaves[o] for o in names if name in UNITS[o].ancestors)
        if leaves[name] < 0:
            return None
    order = sorted((n for n in names if leaves[n]), key=lambda n: (_ORDER.get(n, len(_ORDER)), n))
    if not order:
        return None
    exact = [_cost(prices[n][1], leaves[n], prices[n][0].per) for n in order]
    billed = _split(exact, event.cost_nano)
    if billed is None:
        return None
    lines = []
    for name, nano in zip(order, billed, strict=True):
        unit, rate = prices[name]
        meter, pricing_unit, consumed_unit = _units(unit)
        lines.append(ChargeLine(meter, name, pricing_unit, _quantity(leaves[name], unit.per), rate, consumed_unit,
                                Decimal(leaves[name]), nano, "unit_prices", conditions=usage.conditions))
    return lines


def _resource_lines(event: CostEvent) -> list[ChargeLine] | None:
    hourly, count, seconds = (_price(event.unit_prices.get(k)) for k in ("hourly_usd", "count", "seconds"))
    if hourly is None or count is None or seconds is None:
        return None
    hours = Fraction(count) * Fraction(seconds) / 3600
    quantity = (Decimal(hours.numerator) / Decimal(hours.denominator)).quantize(_QUANTITY, ROUND_HALF_UP)
    if int((Fraction(hourly) * hours * 10**9 + Fraction(1, 2)).__floor__()) != event.cost_nano:
        return None
    unit = "GiB-Hours" if event.model.lower().endswith(("gib-hour", "gib-hours")) else "Hours"
    return [ChargeLine(unit, "on-demand", unit, quantity, hourly, unit, quantity, event.cost_nano, "unit_prices",
                       sku=event.model, span_seconds=seconds)]


def environment_id(event: CostEvent) -> str | None:
    """The environment an accrual event belongs to (its id is evt_<environment id>_<end in µs>)."""
    if event.kind != "environment" or not event.id.startswith("evt_") or "_" not in event.id[4:]:
        return None
    return event.id[4:].rsplit("_", 1)[0]


def _environment_lines(event: CostEvent, environments: Environments | None) -> list[ChargeLine] | None:
    env_id = environment_id(event)
    if environments is None or env_id is None:
        return None
    env = environments(env_id)
    if env is None or env.hourly_nano <= 0 or not env.resources:
        return None
    hours = Fraction(event.cost_nano, env.hourly_nano)  # the accrual's running time, in hours
    rows: list[tuple[str, Decimal, Decimal, int]] = []
    for resource in env.resources:
        rate, count = _price(str(resource.get("hourly_usd"))), resource.get("count")
        if rate is None or not isinstance(count, int) or isinstance(count, bool) or count < 0:
            return None
        quantity = Fraction(count) * hours
        rows.append((str(resource.get("sku")), rate,
                     (Decimal(quantity.numerator) / Decimal(quantity.denominator)).quantize(_QUANTITY, ROUND_HALF_UP),
                     int(resource.get("hourly_nano") or 0)))
    billed = _split([Fraction(nano, env.hourly_nano) * event.cost_nano / 10**9 for *_, nano in rows], event.cost_nano)
    if billed is None or sum(nano for *_, nano in rows) != env.hourly_nano:
        return None
    span = Decimal(hours.numerator * 3600) / Decimal(hours.denominator)
    return [ChargeLine("Hours", "on-demand", "Hours", quantity, rate, "Hours", quantity, nano, "unit_prices", sku=sku,
                       span_seconds=span) for (sku, rate, quantity, _), nano in zip(rows, billed, strict=True)]


def _event_line(event: CostEvent) -> ChargeLine:
    cost = Decimal(event.cost_nano) / _NANO
    return ChargeLine("Requests", "call", "Requests", Decimal(1), cost, "Requests", Decimal(1), event.cost_nano,
                      "event" if event.kind != "tool" else "unit_prices")


def charge_lines(event: CostEvent, environments: Environments | None = None) -> list[ChargeLine]:
    """The event's lines: itemised by unit price where its facts add up to its cost, else one line."""
    lines: list[ChargeLine] | None = None
    if event.kind in _TOKEN_KINDS:
        lines = _token_lines(event)
    elif event.kind in _RESOURCE_KINDS:
        lines = _resource_lines(event)
    elif event.kind == "environment":
        lines = _environment_lines(event, environments)
    return lines or [_event_line(event)]
