"""The columns of costplane's FOCUS 1.2 and 1.3 exports, and their data types.

Every Mandatory column of each version is present, and every Conditional column whose
condition costplane meets: it measures usage (ConsumedQuantity/Unit), prices from public
price lists per unit (ListUnitPrice, SkuId, SkuPriceId, SkuMeter, SkuPriceDetails), states the
contracted price (ContractedUnitPrice, equal to list: costplane applies no negotiated
discount) and the pricing currency (PricingCurrency…), attributes to resources, sub-accounts
(teams) and tags. 1.3 adds ServiceProviderName, HostProviderName, the Allocated* columns and
ContractApplied (null: costplane does no data-generator split allocation and applies no
contract commitment). Left out, because costplane has no such charges: the CommitmentDiscount*
and CapacityReservation* columns and AvailabilityZone (conditional on the data generator
supporting them).
"""

from __future__ import annotations

from collections.abc import Mapping

from costplane.attribution.context import DIMENSIONS

__all__ = [
    "DATETIME_COLUMNS", "DECIMAL_SCALES", "FOCUS_1_2", "FOCUS_1_3", "INTEGER_COLUMNS", "JSON_COLUMNS", "VERSIONS",
    "X_COLUMNS", "columns_for",
]  # fmt: skip

#: FOCUS 1.2 columns costplane exports (the specification's alphabetical order)
FOCUS_1_2: tuple[str, ...] = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingAccountType", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription",
    "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart", "ConsumedQuantity", "ConsumedUnit",
    "ContractedCost", "ContractedUnitPrice", "EffectiveCost", "InvoiceId", "InvoiceIssuerName", "ListCost",
    "ListUnitPrice", "PricingCategory", "PricingCurrency", "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost", "PricingCurrencyListUnitPrice", "PricingQuantity", "PricingUnit",
    "ProviderName", "PublisherName", "RegionId", "RegionName", "ResourceId", "ResourceName", "ResourceType",
    "ServiceCategory", "ServiceName", "ServiceSubcategory", "SkuId", "SkuMeter", "SkuPriceDetails", "SkuPriceId",
    "SubAccountId", "SubAccountName", "SubAccountType", "Tags",
)  # fmt: skip

_ADDED_1_3 = ("AllocatedMethodDetails", "AllocatedMethodId", "AllocatedResourceId", "AllocatedResourceName",
              "AllocatedTags", "ContractApplied", "HostProviderName", "ServiceProviderName")
#: FOCUS 1.3 columns costplane exports (1.2's plus the 1.3 additions; ProviderName and
#: PublisherName are deprecated in 1.3 but still Mandatory, so they stay)
FOCUS_1_3: tuple[str, ...] = tuple(sorted((*FOCUS_1_2, *_ADDED_1_3)))

VERSIONS: Mapping[str, tuple[str, ...]] = {"1.2": FOCUS_1_2, "1.3": FOCUS_1_3}

_X_DIMENSIONS = tuple("x_" + name.capitalize() for name in DIMENSIONS)  # x_Org, x_Team, … x_Outcome
#: costplane's own columns (FOCUS reserves the x_ prefix for them), the same in both versions
X_COLUMNS: tuple[str, ...] = (
    *_X_DIMENSIONS, "x_ProviderKey", "x_Model", "x_KeyId", "x_EventId", "x_LineIndex", "x_DecisionId",
    "x_Kind", "x_Endpoint", "x_Status", "x_RequestedModel", "x_CostBasis", "x_InputTokens", "x_OutputTokens",
    "x_CacheReadTokens", "x_CacheWriteTokens", "x_ReasoningTokens", "x_SavedCost", "x_PriceFlagged",
    "x_LatencyMs",
)  # fmt: skip

#: decimal columns and their scale in Parquet (decimal128(38, scale)); money is USD
DECIMAL_SCALES: Mapping[str, int] = {
    **dict.fromkeys(("BilledCost", "EffectiveCost", "PricingCurrencyEffectiveCost", "x_SavedCost"), 9),
    **dict.fromkeys(("ListCost", "ContractedCost", "ListUnitPrice", "ContractedUnitPrice",
                     "PricingCurrencyListUnitPrice", "PricingCurrencyContractedUnitPrice"), 18),
    **dict.fromkeys(("PricingQuantity", "ConsumedQuantity"), 9),
}  # fmt: skip
#: integer-valued x_ columns (int64 in Parquet)
INTEGER_COLUMNS = frozenset({"x_LineIndex", "x_InputTokens", "x_OutputTokens", "x_CacheReadTokens",
                             "x_CacheWriteTokens", "x_ReasoningTokens", "x_LatencyMs"})
DATETIME_COLUMNS = frozenset({"BillingPeriodEnd", "BillingPeriodStart", "ChargePeriodEnd", "ChargePeriodStart"})
JSON_COLUMNS = frozenset({"SkuPriceDetails", "Tags", "AllocatedTags", "AllocatedMethodDetails", "ContractApplied"})


def columns_for(version: str) -> tuple[str, ...]:
    """Every column of an export in FOCUS `version` ("1.2" or "1.3"): FOCUS columns, then x_ columns."""
    if version not in VERSIONS:
        raise ValueError(f"FOCUS version must be one of {', '.join(VERSIONS)}, got {version!r}")
    return (*VERSIONS[version], *X_COLUMNS)
