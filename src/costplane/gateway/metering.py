"""Price facts the protocol adapters share: what a body says about its price before the call,
what a response says about the tier it served and the fees of its tool calls, its response id.

Each adapter's own usage parsing and stream meter live in its module (`gateway.protocols`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from costplane.pricing.readers import (
    openai_response_units,
    request_conditions,
    request_units,
    tier_conditions,
)
from costplane.pricing.types import TokenUsage

__all__ = ["billed_facts", "response_id", "served_usage"]

_MAX_ID = 256  # a provider's response id is short; anything longer is not kept


def response_id(payload: Any) -> str | None:
    """The provider's id of a response (OpenAI `chatcmpl-…` / `resp_…`, Anthropic `msg_…`), the
    key that finds the same call when the client's own telemetry reports it (`gen_ai.response.id`)."""
    value = payload.get("id") if isinstance(payload, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= _MAX_ID else None


def billed_facts(body: Mapping[str, Any]) -> dict[str, Any]:
    """What a request body says about its price before the call, as request parameters for the
    decision core (and CEL): the `service_tier`/`speed` it asks for and the fee-bearing units its
    built-in tools may incur (`billed_units`, e.g. ["web_searches"])."""
    facts: dict[str, Any] = dict(request_conditions(body))
    if body.get("service_tier") == "auto":
        facts["service_tier"] = "auto"  # not a price condition, but the bound must cover any tier
    units = request_units(body)
    if units:
        facts["billed_units"] = sorted(units)
    return facts


def served_usage(usage: TokenUsage | None, payload: Any) -> TokenUsage | None:
    """`usage` with what only the whole response body says: the OpenAI tier actually served
    (`service_tier`) and the Responses API's tool-call items (web/file searches). What the usage
    object itself reports (Anthropic's `usage.service_tier`) wins."""
    if usage is None or not isinstance(payload, Mapping):
        return usage
    conditions = tier_conditions(payload.get("service_tier"))
    extra = openai_response_units(payload)
    if not conditions and not extra:
        return usage
    conditions.update(usage.conditions)
    units = dict(usage.units)
    for name, count in extra.items():
        units[name] = max(units.get(name, 0), count)
    return TokenUsage(usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens,
                      usage.reasoning_tokens, units=tuple(units.items()), conditions=tuple(conditions.items()))
