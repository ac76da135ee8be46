"""Expected costs of billed units, computed straight from genai-prices' data objects with Decimal
arithmetic — never through costplane's pricing code — for the gateway and SDK acceptance tests.

The rate of every unit is read from the installed data at test time (no price or version is
written here); a unit the data does not price fails the test instead of counting as 0.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from genai_prices.data_snapshot import find_provider_by_id, get_snapshot
from genai_prices.types import ModelPrice, TieredPrices

__all__ = ["data_price", "expected_nano", "model_without", "rate"]


def data_price(provider: str, model: str, at: datetime | None = None, **context: str) -> ModelPrice:
    """The data's ModelPrice of `model` at `at` (now) under request `context` (service_tier=…, processing=…)."""
    snapshot = get_snapshot()
    found = find_provider_by_id(snapshot.providers, provider)
    assert found is not None, provider
    info = found.find_model(model)
    assert info is not None, model
    return info.get_prices(at or datetime.now(UTC), context or None)


def rate(price: ModelPrice, key: str, input_tokens: int = 0) -> Decimal:
    """The data's rate for `key` at this call size (cliff tiers by input tokens); the key must be priced."""
    value = getattr(price, key)
    assert value is not None, f"the price data has no {key} for this model"
    if isinstance(value, TieredPrices):
        chosen = value.base
        for tier in value.tiers:
            if input_tokens > tier.start:
                chosen = tier.price
        return chosen
    assert isinstance(value, Decimal)
    return value


def expected_nano(price: ModelPrice, *, input_total: int, output_total: int, cache_read: int = 0,
                  cache_write_5m: int = 0, cache_write_1h: int = 0, input_audio: int = 0, output_audio: int = 0,
                  reasoning: int = 0, web_searches: int = 0) -> int:
    """nano-USD of one call: every token at the data's rate for its kind, fees per call; half-up once."""
    r = {key: (lambda k=key: rate(price, k, input_total)) for key in (
        "input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "cache_write_1h_mtok",
        "input_audio_mtok", "output_audio_mtok", "web_searches_kcount")}
    text_in = input_total - cache_read - cache_write_5m - cache_write_1h - input_audio
    text_out = output_total - output_audio - reasoning
    mtok = Decimal(text_in) * r["input_mtok"]() + Decimal(text_out) * r["output_mtok"]()
    if cache_read:
        mtok += cache_read * r["cache_read_mtok"]()
    if cache_write_5m:
        mtok += cache_write_5m * r["cache_write_mtok"]()
    if cache_write_1h:
        mtok += cache_write_1h * r["cache_write_1h_mtok"]()
    if input_audio:
        mtok += input_audio * r["input_audio_mtok"]()
    if output_audio:
        mtok += output_audio * r["output_audio_mtok"]()
    if reasoning:
        own = price.output_reasoning_mtok
        mtok += reasoning * (own if own is not None else r["output_mtok"]())
    usd = mtok / Decimal(1_000_000)
    if web_searches:
        usd += web_searches * r["web_searches_kcount"]() / Decimal(1000)
    requests = price.requests_kcount
    if requests is not None:
        usd += requests / Decimal(1000)
    return int((usd * 10**9).to_integral_value(rounding=ROUND_HALF_UP))


def model_without(provider: str, price_key: str, prefix: str = "", at: datetime | None = None) -> str | None:
    """A model of `provider` (id starting with `prefix`) whose current price lacks `price_key`, read
    from the data at test time (None when every such model has it)."""
    snapshot = get_snapshot()
    found = find_provider_by_id(snapshot.providers, provider)
    assert found is not None, provider
    for info in found.models:
        if not info.id.startswith(prefix):
            continue
        price = info.get_prices(at or datetime.now(UTC))
        if getattr(price, "input_mtok", None) is not None and getattr(price, price_key, None) is None:
            return info.id
    return None
