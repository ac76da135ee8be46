"""Properties: the worst-case bound covers every cost; costs are monotone and exact."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from costplane.pricing import Catalog, PriceSheet, PricingConfig, TokenUsage, genai

_CATALOG = Catalog.load()
_SHEETS: list[PriceSheet] = [
    rule.sheet
    for provider in genai.providers()
    for info in provider.models
    for rule in _CATALOG.history(info.id, provider.id).rules
    if rule.sheet is not None
]

prices = st.decimals(min_value=0, max_value=1000, places=9, allow_nan=False, allow_infinity=False)


@st.composite
def usages(draw: st.DrawFn) -> TokenUsage:
    input_tokens = draw(st.integers(0, 2_000_000))
    cache_read = draw(st.integers(0, input_tokens))
    cache_write = draw(st.integers(0, input_tokens - cache_read))
    output = draw(st.integers(0, 200_000))
    reasoning = draw(st.integers(0, output))
    return TokenUsage(input_tokens, output, cache_read, cache_write, reasoning)


@st.composite
def override_sheets(draw: st.DrawFn) -> PriceSheet:
    spec: dict[str, object] = {"model": "m", "input": draw(prices), "output": draw(prices)}
    for name in ("cache_read", "cache_write", "reasoning"):
        if draw(st.booleans()):
            spec[name] = draw(prices)
    starts = sorted(draw(st.sets(st.integers(0, 1_500_000), max_size=3)))
    spec["tiers"] = [{"above": start, draw(st.sampled_from(["input", "output", "cache_read"])): draw(prices)}
                     for start in starts]
    if spec["input"] == spec["output"] == 0:
        spec["input"] = Decimal(1)
    return Catalog(PricingConfig.parse({"overrides": [spec]})).lookup("m")


@settings(max_examples=300, deadline=None)
@given(sheet=st.sampled_from(_SHEETS), usage=usages())
def test_max_cost_bounds_cost_for_catalog_sheets(sheet: PriceSheet, usage: TokenUsage) -> None:
    assert sheet.max_cost_nano(usage.input_tokens, usage.output_tokens) >= sheet.cost_nano(usage) >= 0


@settings(max_examples=300, deadline=None)
@given(sheet=override_sheets(), usage=usages())
def test_max_cost_bounds_cost_for_declared_sheets(sheet: PriceSheet, usage: TokenUsage) -> None:
    assert sheet.max_cost_nano(usage.input_tokens, usage.output_tokens) >= sheet.cost_nano(usage) >= 0


@settings(max_examples=200, deadline=None)
@given(rate_in=prices, rate_out=prices, usage=usages())
def test_cost_is_the_exact_sum_rounded_half_up_once(rate_in: Decimal, rate_out: Decimal,
                                                    usage: TokenUsage) -> None:
    sheet = PriceSheet(model="m", provider="p", input=rate_in, output=rate_out)
    exact_usd = (usage.input_tokens * rate_in + usage.output_tokens * rate_out) / Decimal(10**6)
    nano = exact_usd * 10**9
    assert sheet.cost_nano(usage) == int(nano.to_integral_value(rounding="ROUND_HALF_UP"))
