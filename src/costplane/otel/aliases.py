"""GenAI attribute names: semantic conventions v1.41 and the older / vendor names they replace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ALIASES", "normalise"]

#: canonical (v1.41) name -> names accepted for it, in order of preference
ALIASES: dict[str, tuple[str, ...]] = {
    "gen_ai.operation.name": ("gen_ai.operation.name", "llm.request.type"),
    "gen_ai.provider.name": ("gen_ai.provider.name", "gen_ai.system", "llm.vendor", "llm.provider"),
    "gen_ai.request.model": ("gen_ai.request.model", "llm.request.model", "llm.model_name"),
    "gen_ai.response.model": ("gen_ai.response.model", "llm.response.model"),
    "gen_ai.usage.input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                                  "llm.usage.prompt_tokens", "llm.token_count.prompt"),
    "gen_ai.usage.output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                                   "llm.usage.completion_tokens", "llm.token_count.completion"),
    "gen_ai.usage.cache_read.input_tokens": ("gen_ai.usage.cache_read.input_tokens",
                                             "gen_ai.usage.cache_read_input_tokens", "gen_ai.usage.cached_tokens",
                                             "llm.usage.cache_read_input_tokens"),
    "gen_ai.usage.cache_creation.input_tokens": ("gen_ai.usage.cache_creation.input_tokens",
                                                 "gen_ai.usage.cache_creation_input_tokens",
                                                 "llm.usage.cache_creation_input_tokens"),
    "gen_ai.usage.reasoning.output_tokens": ("gen_ai.usage.reasoning.output_tokens",
                                             "gen_ai.usage.reasoning_tokens"),
    "gen_ai.agent.name": ("gen_ai.agent.name", "agent.name"),
    "gen_ai.agent.id": ("gen_ai.agent.id",),
    "gen_ai.conversation.id": ("gen_ai.conversation.id", "session.id", "gen_ai.thread.id"),
    "gen_ai.tool.name": ("gen_ai.tool.name", "tool.name"),
}
#: alias -> (canonical name, preference: lower wins)
_CANONICAL: dict[str, tuple[str, int]] = {alias: (name, rank) for name, names in ALIASES.items()
                                          for rank, alias in enumerate(names)}


def normalise(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The span's attributes under their canonical v1.41 names (aliases resolved, first preference
    wins); other attributes are kept as they are."""
    out: dict[str, Any] = {}
    ranks: dict[str, int] = {}
    for key, value in attrs.items():
        if value is None:
            continue
        canonical = _CANONICAL.get(key)
        if canonical is None:
            out.setdefault(key, value)
            continue
        name, rank = canonical
        if rank < ranks.get(name, 1 << 30):
            out[name] = value
            ranks[name] = rank
    return out
