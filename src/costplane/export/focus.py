"""Cost events as FOCUS 1.2 rows (FinOps Open Cost and Usage Specification).

One row per cost event. Money columns are exact decimal strings of the event's nano-USD
cost: costplane charges list prices without negotiated discounts, so BilledCost =
EffectiveCost = ListCost = ContractedCost, and the sum of BilledCost is exactly the
ledger's spend. Token prices differ per token type, so a row has no single unit price:
ListUnitPrice/ContractedUnitPrice are null and SkuPriceDetails carries every per-token
price (USD per million tokens). Every context dimension is an `x_` column (x_Team,
x_Agent, x_Run, …); the free tags are in Tags (JSON). RegionId and AvailabilityZone are
null: a model API call has no meaningful region here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from costplane.attribution.context import DIMENSIONS
from costplane.ledger.store import Store
from costplane.ledger.types import CostEvent
from costplane.money import format_usd

__all__ = ["DATETIME_COLUMNS", "DECIMAL_COLUMNS", "FOCUS_COLUMNS", "X_COLUMNS", "focus_row", "iter_events"]

#: every column of FOCUS 1.2, in the specification's (alphabetical) order
FOCUS_COLUMNS: tuple[str, ...] = (
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName", "BillingAccountType",
    "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart", "CapacityReservationId",
    "CapacityReservationStatus", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency",
    "ChargePeriodEnd", "ChargePeriodStart", "CommitmentDiscountCategory", "CommitmentDiscountId",
    "CommitmentDiscountName", "CommitmentDiscountQuantity", "CommitmentDiscountStatus", "CommitmentDiscountType",
    "CommitmentDiscountUnit", "ConsumedQuantity", "ConsumedUnit", "ContractedCost", "ContractedUnitPrice",
    "EffectiveCost", "InvoiceId", "InvoiceIssuerName", "ListCost", "ListUnitPrice", "PricingCategory",
    "PricingCurrency", "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName",
    "RegionId", "RegionName", "ResourceId", "ResourceName", "ResourceType", "ServiceCategory", "ServiceName",
    "ServiceSubcategory", "SkuId", "SkuMeter", "SkuPriceDetails", "SkuPriceId", "SubAccountId",
    "SubAccountName", "SubAccountType", "Tags",
)  # fmt: skip

_X_DIMENSIONS = tuple("x_" + name.capitalize() for name in DIMENSIONS)  # x_Org, x_Team, … x_Outcome
#: costplane's own columns (FOCUS reserves the x_ prefix for them)
X_COLUMNS: tuple[str, ...] = (
    *_X_DIMENSIONS, "x_KeyId", "x_EventId", "x_DecisionId", "x_Kind", "x_Endpoint", "x_Status",
    "x_RequestedModel", "x_InputTokens", "x_OutputTokens", "x_CacheReadTokens", "x_CacheWriteTokens",
    "x_ReasoningTokens", "x_SavedCost", "x_PriceFlagged", "x_LatencyMs",
)  # fmt: skip

DECIMAL_COLUMNS = frozenset({"BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ConsumedQuantity",
                             "PricingQuantity", "PricingCurrencyEffectiveCost", "x_SavedCost"})
DATETIME_COLUMNS = frozenset({"BillingPeriodEnd", "BillingPeriodStart", "ChargePeriodEnd", "ChargePeriodStart"})

_GENERATIVE = ("llm", "cache_hit")


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _month(at: datetime) -> tuple[datetime, datetime]:
    start = at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def focus_row(event: CostEvent) -> dict[str, str | None]:
    """One FOCUS 1.2 row (plus x_ columns) of an event; every value a string or None (null)."""
    ctx, usage = event.context, event.usage
    cost = format_usd(event.cost_nano)
    tokens = str(usage.input_tokens + usage.output_tokens)
    end = event.ts.astimezone(UTC)
    start = end - timedelta(milliseconds=max(0, event.latency_ms))
    start = start.replace(microsecond=0)
    end = max(start + timedelta(seconds=1), end + timedelta(microseconds=(1_000_000 - end.microsecond) % 1_000_000))
    period_start, period_end = _month(event.ts)
    sku = f"{event.provider}/{event.model}/{event.endpoint or event.kind}"
    prices = ",".join(f"{name}={value}" for name, value in sorted(event.unit_prices.items()))
    dims = ctx.dimensions()
    row: dict[str, Any] = dict.fromkeys(FOCUS_COLUMNS)
    row.update({
        "BilledCost": cost, "EffectiveCost": cost, "ListCost": cost, "ContractedCost": cost,
        "PricingCurrencyEffectiveCost": cost,
        "BillingAccountId": ctx.org or "default", "BillingAccountName": ctx.org or "default",
        "BillingAccountType": "Organization", "BillingCurrency": "USD", "PricingCurrency": "USD",
        "BillingPeriodStart": _iso(period_start), "BillingPeriodEnd": _iso(period_end),
        "ChargePeriodStart": _iso(start), "ChargePeriodEnd": _iso(end),
        "ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based", "PricingCategory": "Standard",
        "ChargeDescription": f"{event.model} {event.endpoint or event.kind} ({event.kind}, {tokens} tokens)",
        "ConsumedQuantity": tokens, "ConsumedUnit": "Tokens", "PricingQuantity": tokens, "PricingUnit": "Tokens",
        "ProviderName": event.provider, "PublisherName": event.provider, "InvoiceIssuerName": event.provider,
        "ResourceId": f"{event.provider}/{event.model}", "ResourceName": event.model, "ResourceType": "Model",
        "ServiceCategory": "AI and Machine Learning", "ServiceName": f"{event.provider} {event.endpoint or 'API'}",
        "ServiceSubcategory": "Generative AI" if event.kind in _GENERATIVE else "Other (AI and Machine Learning)",
        "SkuId": sku, "SkuMeter": "Tokens", "SkuPriceId": f"{sku}@{prices}" if prices else sku,
        "SkuPriceDetails": orjson.dumps({f"{k}_usd_per_mtok": v for k, v in sorted(event.unit_prices.items())}
                                        ).decode(),
        "SubAccountId": ctx.team, "SubAccountName": ctx.team, "SubAccountType": "Team" if ctx.team else None,
        "Tags": orjson.dumps({**dims, **dict(ctx.tags)}, option=orjson.OPT_SORT_KEYS).decode(),
    })
    for name, column in zip(DIMENSIONS, _X_DIMENSIONS, strict=True):
        row[column] = dims.get(name)
    row.update({
        "x_KeyId": ctx.key_id, "x_EventId": event.id, "x_DecisionId": event.decision_id, "x_Kind": event.kind,
        "x_Endpoint": event.endpoint or None, "x_Status": event.status, "x_RequestedModel": event.requested_model,
        "x_InputTokens": str(usage.input_tokens), "x_OutputTokens": str(usage.output_tokens),
        "x_CacheReadTokens": str(usage.cache_read_tokens), "x_CacheWriteTokens": str(usage.cache_write_tokens),
        "x_ReasoningTokens": str(usage.reasoning_tokens), "x_SavedCost": format_usd(event.saved_nano),
        "x_PriceFlagged": "true" if event.price_flagged else "false", "x_LatencyMs": str(event.latency_ms),
    })
    return row


def iter_events(store: Store, since: datetime | None, until: datetime | None,
                batch: int = 5000) -> Iterator[CostEvent]:
    """Every event with since <= ts < until, oldest first, read in pages (bounded memory)."""
    after: tuple[datetime, str] | None = None
    while True:
        page = store.events_page(since=since, until=until, after=after, limit=batch)
        yield from page
        if len(page) < batch:
            return
        after = (page[-1].ts, page[-1].id)
