"""Re-pricing compact usage rows (`source.UsageRow`) on another model, each at its own time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from costplane.ledger import codec
from costplane.optimize.detectors.source import ModelGroup, Source, UsageRow
from costplane.optimize.pricing import price_sheet
from costplane.pricing.catalog import Catalog
from costplane.pricing.history import PriceHistory
from costplane.pricing.types import PriceSheet, TokenUsage, UnknownPrice

__all__ = ["flat_femto", "reprice_groups", "reprice_rows", "trim_saving", "trimmed", "usage"]

_FEMTO_PER_USD_PER_MTOK = 10**9  # 1 USD per million tokens = 1e9 femto-USD per token
_FEMTO_PER_NANO = 10**6


_USAGES: dict[tuple[int, int, int, int, int], TokenUsage] = {}
_MAX_USAGES = 200_000


def usage(row: UsageRow) -> TokenUsage:
    """The row's token counts; memoised, because a validated `TokenUsage` costs microseconds and
    millions of rows repeat a far smaller set of counts."""
    key = (row[3], row[4], row[5], row[6], row[7])
    found = _USAGES.get(key)
    if found is None:
        if len(_USAGES) >= _MAX_USAGES:
            _USAGES.clear()
        found = _USAGES[key] = TokenUsage(*key)
    return found


def trimmed(used: TokenUsage, extra: int) -> TokenUsage:
    """`used` with `extra` fewer input tokens (memoised like `usage`)."""
    return usage((0, "", None, used.input_tokens - extra, used.output_tokens, used.cache_read_tokens,
                  used.cache_write_tokens, used.reasoning_tokens, 0))


def reprice_rows(catalog: Catalog, model: str, provider: str | None,
                 rows: Iterable[UsageRow]) -> tuple[int, int] | None:
    """(recorded cost, cost on `model`) of `rows`, each priced at its own time (effective-dated);
    None when `model` has no price at one of those times."""
    recorded = repriced = 0
    for row in rows:
        sheet = price_sheet(catalog, model, provider, codec.from_us(row[0]))
        if sheet is None:
            return None
        recorded += row[8]
        repriced += sheet.cost_nano(usage(row))
    return recorded, repriced


def _standard_constant(history: PriceHistory) -> PriceSheet | None:
    """The sheet of `history` when its standard price (no service tier, no batch) never changes with
    time: every rule is date-bound only and declares the same token rates, and the oldest applies
    always. Price variants that start on a date (service tiers) leave the standard price constant;
    the detectors re-price the five token columns, which carry no price condition."""
    if history.fixed:
        return history.constant
    rules = history.rules
    if not rules or rules[-1].start is not None or any(r.daily is not None or r.sheet is None for r in rules):
        return None
    first = rules[0].sheet
    for rule in rules[1:]:
        other = rule.sheet
        if first is None or other is None or other.declared(0) != first.declared(0) or other.tiers != first.tiers:
            return None
    return first


def flat_femto(catalog: Catalog, model: str, provider: str | None) -> tuple[int, ...] | None:
    """Femto-USD per (input, cache read, cache write, output, reasoning) token when `model`'s price
    never changes with time or call size (the common case); None otherwise."""
    try:
        history = catalog.history(model, provider)
    except UnknownPrice:
        return None
    sheet = _standard_constant(history)
    if sheet is None or sheet.tiers or "requests" in dict(sheet.units):
        return None
    rates = sheet.rates(0)
    femto = tuple(rates[k] * _FEMTO_PER_USD_PER_MTOK for k in ("input", "cache_read", "cache_write", "output",
                                                               "reasoning"))
    if any(f != f.to_integral_value() for f in femto):
        return None
    return tuple(int(f) for f in femto)


def reprice_groups(source: Source, catalog: Catalog, model: str, provider: str | None, groups: list[ModelGroup],
                   short: tuple[int, int] | None = None) -> tuple[int, int, int, set[str]] | None:
    """(calls, recorded cost, cost on `model`, experiments) of the groups' (short) calls: summed by the
    source when `model` has one flat price (`flat_femto`), else from their rows priced one by one.
    Experiments are only collected for whole groups (`short` None). None: `model` has no price."""
    femto = flat_femto(catalog, model, provider)
    if femto is not None:
        totals = [source.model_costs(g, femto, short=short) for g in groups]
        if all(t is not None for t in totals):
            done = [t for t in totals if t is not None]
            return (sum(t[0] for t in done), sum(t[1] for t in done), sum(t[2] for t in done),
                    set().union(*(t[3] for t in done)))
    rows = [row for g in groups for row in source.model_rows(g, short=short)]
    costs = reprice_rows(catalog, model, provider, rows)
    if costs is None:
        return None
    return len(rows), costs[0], costs[1], {r[2] for r in rows if r[2]}


def trim_saving(catalog: Catalog, model: str, provider: str | None, rows: Sequence[UsageRow],
                trims: Iterable[int]) -> tuple[int, int]:
    """(input tokens trimmed, cost saved) when each row sends its `trim` (at most its uncached input)
    fewer input tokens, each row priced at its own time; a row without a price saves nothing. With one
    flat price (`flat_femto`) the rows are priced with integers directly — the same sums and half-up
    rounding as `PriceSheet.cost_nano`, without building a `TokenUsage` per row."""
    femto = flat_femto(catalog, model, provider)
    tokens = saving = 0
    if femto is None:
        for row, trim in zip(rows, trims, strict=True):
            sheet = price_sheet(catalog, model, provider, codec.from_us(row[0]))
            used = usage(row)
            extra = min(used.uncached_input_tokens, trim)
            if sheet is None or extra <= 0:
                continue
            tokens += extra
            saving += sheet.cost_nano(used) - sheet.cost_nano(trimmed(used, extra))
        return tokens, saving
    f_input, f_read, f_write, f_output, f_reasoning = femto
    half = _FEMTO_PER_NANO // 2
    for (_, _, _, inp, out, read, write, reasoning, _), trim in zip(rows, trims, strict=True):
        uncached = inp - read - write
        extra = min(uncached, trim)
        if extra <= 0:
            continue
        total = (uncached * f_input + read * f_read + write * f_write + (out - reasoning) * f_output
                 + reasoning * f_reasoning + half)
        tokens += extra
        saving += total // _FEMTO_PER_NANO - (total - extra * f_input) // _FEMTO_PER_NANO
    return tokens, saving
