"""Extra usage the simulator reports when asked: the shapes of billed units real APIs report.

Two ways to ask, merged in this order (the header wins):

* `SimulatorConfig.usage_profiles`: model glob -> profile, for every request to a matching model
  (a gateway in front of the simulator forwards no simulator headers, so its tests use these);
* the `x-simulator-usage` request header: one profile as JSON.

A profile is a JSON object: `usage` is deep-merged into the usage object the answer reports
(plain and streamed), `service_tier` replaces the response's top-level `service_tier` (OpenAI).
Example: `{"usage": {"cache_creation": {"ephemeral_1h_input_tokens": 200}}}`.

Without a profile the simulator still reports what the request asks for, like the real APIs:
OpenAI echoes a requested `service_tier` (`auto` -> `default`), Anthropic reports one
`server_tool_use.web_search_requests` when the request enables a web search tool.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

import orjson

from costplane.simulator.errors import InvalidRequest

__all__ = ["USAGE_HEADER", "deep_merge", "profile_for", "served_tier", "web_searches"]

USAGE_HEADER = "x-simulator-usage"
_TIERS = ("default", "flex", "priority", "scale")


def profile_for(profiles: Mapping[str, Mapping[str, Any]], model: str, header: str | None) -> dict[str, Any]:
    """The profile for one request: the matching configured profiles, then the header's."""
    out: dict[str, Any] = {}
    for pattern, profile in profiles.items():
        if fnmatch.fnmatchcase(model.lower(), pattern.lower()):
            out = deep_merge(out, profile)
    if header is not None:
        try:
            parsed = orjson.loads(header)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"{USAGE_HEADER} must be a JSON object: {exc}", param=USAGE_HEADER) from None
        if not isinstance(parsed, dict) or set(parsed) - {"usage", "service_tier"} or not isinstance(
                parsed.get("usage", {}), dict):
            raise InvalidRequest(f"{USAGE_HEADER} must be a JSON object with 'usage' (an object) and/or "
                                 "'service_tier'", param=USAGE_HEADER)
        out = deep_merge(out, parsed)
    return out


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        current = merged.get(key)
        merged[key] = deep_merge(current, value) if isinstance(current, Mapping) and isinstance(
            value, Mapping) else value
    return merged


def served_tier(body: Mapping[str, Any], profile: Mapping[str, Any]) -> str:
    """The OpenAI `service_tier` a response reports."""
    tier = profile.get("service_tier")
    if isinstance(tier, str):
        return tier
    asked = body.get("service_tier")
    return asked if isinstance(asked, str) and asked in _TIERS else "default"


def web_searches(body: Mapping[str, Any]) -> int:
    """One web search per request that enables Anthropic's web search tool (0 otherwise)."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return 0
    enabled = any(isinstance(t, Mapping) and str(t.get("type", "")).startswith("web_search") for t in tools)
    return 1 if enabled else 0
