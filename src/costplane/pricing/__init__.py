"""Prices of LLM tokens: the shipped genai-prices table plus costplane.yaml overrides."""

from costplane.pricing.catalog import Catalog, ModelEntry
from costplane.pricing.config import (
    Override,
    PricingConfig,
    PricingConfigError,
    UnknownPriceRule,
    parse_price,
)
from costplane.pricing.describe import HistoryItem, PriceDetail
from costplane.pricing.genai import NotMetered
from costplane.pricing.history import PriceHistory, PriceRule
from costplane.pricing.skuconfig import SkuOverride
from costplane.pricing.skus import SkuCatalog, SkuPrice, UnknownSku
from costplane.pricing.types import TOKEN_TYPES, PriceSheet, TokenUsage, UnknownPrice

__all__ = [
    "TOKEN_TYPES",
    "Catalog",
    "HistoryItem",
    "ModelEntry",
    "NotMetered",
    "Override",
    "PriceDetail",
    "PriceHistory",
    "PriceRule",
    "PriceSheet",
    "PricingConfig",
    "PricingConfigError",
    "SkuCatalog",
    "SkuOverride",
    "SkuPrice",
    "TokenUsage",
    "UnknownPrice",
    "UnknownPriceRule",
    "UnknownSku",
    "parse_price",
]
