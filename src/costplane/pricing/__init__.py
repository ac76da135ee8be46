"""Prices of LLM tokens: the shipped genai-prices table plus costplane.yaml overrides."""

from costplane.pricing.types import TOKEN_TYPES, PriceSheet, TokenUsage, UnknownPrice

__all__ = ["TOKEN_TYPES", "PriceSheet", "TokenUsage", "UnknownPrice"]
