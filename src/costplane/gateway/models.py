"""`GET /v1/models`: the models each protocol family can reach through this gateway.

The OpenAI and Anthropic families ask their providers' own listing and keep what the provider is
configured to serve; the other families list what the configuration names (literal model names,
aliases, Azure deployments). The Anthropic family answers in Anthropic's list shape (the client
sent `anthropic-version`), the Gemini family in Google's (`GET /v1beta/models`, or a Google
header), every other family in OpenAI's (`?family=` picks one).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson

from costplane.config import ProviderConfig
from costplane.gateway.upstream import UpstreamError, UpstreamTransport

__all__ = ["model_listing"]

_GLOB = frozenset("*?[")


async def _upstream(provider: ProviderConfig, transport: UpstreamTransport, log: logging.Logger) -> list[Any]:
    if provider.protocol == "anthropic":
        headers = {"x-api-key": provider.api_key() or "costplane", "anthropic-version": "2023-06-01"}
    else:
        headers = {"authorization": f"Bearer {provider.api_key() or 'costplane'}"}
    try:
        response = await transport.get(provider.base_url + "/models", headers, 10.0)
        listing = orjson.loads(await response.read()) if response.status == 200 else {}
    except (UpstreamError, orjson.JSONDecodeError) as exc:
        log.warning("listing models of provider %s failed: %s", provider.name, exc)
        listing = {}
    data = listing.get("data", []) if isinstance(listing, dict) else []
    return data if isinstance(data, list) else []


async def model_listing(providers: Sequence[ProviderConfig], family: str, transport: UpstreamTransport,
                        log: logging.Logger) -> dict[str, Any]:
    seen: dict[str, tuple[str, int]] = {}  # model id -> (provider, created)
    for provider in providers:
        if provider.protocol != family:
            continue
        if family in ("openai", "anthropic"):
            for item in await _upstream(provider, transport, log):
                model_id = item.get("id") if isinstance(item, dict) else None
                created = item.get("created", 0) if isinstance(item, dict) else 0
                if isinstance(model_id, str) and provider.serves(model_id):
                    seen.setdefault(model_id, (provider.name, created if isinstance(created, int) else 0))
        else:
            for pattern in provider.models:
                if not _GLOB & set(pattern):
                    seen.setdefault(pattern, (provider.name, 0))
        for name in (*provider.aliases, *provider.deployments):
            seen.setdefault(name, (provider.name, 0))
    ordered = sorted(seen.items())
    if family == "anthropic":
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "1970-01-01T00:00:00Z"}
                for m, _ in ordered]
        return {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None}
    if family == "gemini":
        methods = ["generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents"]
        return {"models": [{"name": f"models/{m}", "baseModelId": m, "version": "001", "displayName": m,
                            "supportedGenerationMethods": methods} for m, _ in ordered]}
    return {"object": "list", "family": family,
            "data": [{"id": m, "object": "model", "created": created, "owned_by": owner}
                     for m, (owner, created) in ordered]}
