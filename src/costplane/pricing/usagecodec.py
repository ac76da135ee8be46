"""`TokenUsage` as JSON: the wire format of the SDK's recorder and the stored extras of a cost event.

The five token counts are plain keys (as they always were); the other billed units and the
price conditions ride along under `units` and `conditions` only when present, so older
readers and older rows stay valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from costplane.pricing.types import TokenUsage

__all__ = ["TOKEN_KEYS", "usage_extras", "usage_from_json", "usage_to_json", "with_extras"]

TOKEN_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


def usage_extras(usage: TokenUsage) -> dict[str, Any]:
    """The units and conditions beyond the five token counts ({} when there are none)."""
    out: dict[str, Any] = {}
    if usage.units:
        out["units"] = dict(usage.units)
    if usage.conditions:
        out["conditions"] = dict(usage.conditions)
    return out


def usage_to_json(usage: TokenUsage) -> dict[str, Any]:
    return {**{key: getattr(usage, key) for key in TOKEN_KEYS}, **usage_extras(usage)}


def usage_from_json(data: Mapping[str, Any]) -> TokenUsage:
    """Raises ValueError (naming the key) on anything that is not a valid usage."""
    unknown = set(data) - {*TOKEN_KEYS, "units", "conditions"}
    if unknown:
        raise ValueError(f"unknown usage key(s): {', '.join(sorted(unknown))}")
    counts = {}
    for key in TOKEN_KEYS:
        value = data.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"{key} must be an integer, got {value!r}")
        try:
            counts[key] = int(value)
        except ValueError:
            raise ValueError(f"{key} must be an integer, got {value!r}") from None
    tokens = TokenUsage(counts["input_tokens"], counts["output_tokens"], counts["cache_read_tokens"],
                        counts["cache_write_tokens"], counts["reasoning_tokens"])
    return with_extras(tokens, data.get("units"), data.get("conditions"))


def with_extras(usage: TokenUsage, units: Any, conditions: Any) -> TokenUsage:
    """`usage` with the `units` and `conditions` mappings of its JSON form (None: none)."""
    if units is None and conditions is None:
        return usage
    if units is not None and not isinstance(units, Mapping):
        raise ValueError(f"units must be an object of unit name -> count, got {units!r}")
    if conditions is not None and not isinstance(conditions, Mapping):
        raise ValueError(f"conditions must be an object of name -> value, got {conditions!r}")
    pairs = tuple((str(k), v) for k, v in (units or {}).items())
    for name, value in pairs:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"units.{name} must be an integer, got {value!r}")
    return TokenUsage(usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens,
                      usage.reasoning_tokens, units=pairs,
                      conditions=tuple((str(k), str(v)) for k, v in (conditions or {}).items()))
