"""GenAI attribute names: the current semantic conventions and the older / vendor names they replace.

Canonical names are those of the OpenTelemetry GenAI semantic conventions (registry
`model/gen-ai/registry.yaml`): `gen_ai.provider.name` (formerly `gen_ai.system`),
`gen_ai.usage.input_tokens` / `output_tokens` (formerly `prompt_tokens` / `completion_tokens`),
`gen_ai.usage.cache_read.input_tokens`, `gen_ai.usage.cache_write.input_tokens` (formerly
`cache_creation`), `gen_ai.usage.reasoning.output_tokens`. The aliases cover earlier semconv
releases, OpenLLMetry (`llm.usage.*`, `gen_ai.usage.cache_*_input_tokens`), OpenInference
(`llm.token_count.*`) and the legacy Sentry/LangWatch spellings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["ALIASES", "CONTENT_INPUT", "CONTENT_OUTPUT", "INDEXED_CONTENT", "normalise"]

#: canonical name -> names accepted for it, in order of preference (the first present wins)
ALIASES: dict[str, tuple[str, ...]] = {
    "gen_ai.operation.name": ("gen_ai.operation.name", "llm.request.type"),
    "gen_ai.provider.name": ("gen_ai.provider.name", "gen_ai.system", "llm.vendor", "llm.provider",
                             "llm.system"),
    "gen_ai.request.model": ("gen_ai.request.model", "llm.request.model", "llm.model_name"),
    "gen_ai.response.model": ("gen_ai.response.model", "llm.response.model"),
    "gen_ai.request.max_tokens": ("gen_ai.request.max_tokens", "llm.request.max_tokens"),
    "gen_ai.usage.input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                                  "llm.usage.prompt_tokens", "llm.token_count.prompt"),
    "gen_ai.usage.output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                                   "llm.usage.completion_tokens", "llm.token_count.completion"),
    "gen_ai.usage.cache_read.input_tokens": ("gen_ai.usage.cache_read.input_tokens",
                                             "gen_ai.usage.cache_read_input_tokens", "gen_ai.usage.cached_tokens",
                                             "gen_ai.usage.input_tokens.cached",
                                             "llm.usage.cache_read_input_tokens",
                                             "llm.token_count.prompt_details.cache_read"),
    "gen_ai.usage.cache_write.input_tokens": ("gen_ai.usage.cache_write.input_tokens",
                                              "gen_ai.usage.cache_creation.input_tokens",
                                              "gen_ai.usage.cache_write_input_tokens",
                                              "gen_ai.usage.cache_creation_input_tokens",
                                              "gen_ai.usage.input_tokens.cache_write",
                                              "llm.usage.cache_creation_input_tokens",
                                              "llm.token_count.prompt_details.cache_write"),
    "gen_ai.usage.reasoning.output_tokens": ("gen_ai.usage.reasoning.output_tokens",
                                             "gen_ai.usage.reasoning_tokens",
                                             "gen_ai.usage.output_tokens.reasoning",
                                             "llm.token_count.completion_details.reasoning"),
    "gen_ai.input.messages": ("gen_ai.input.messages", "gen_ai.prompt", "input.value"),
    "gen_ai.output.messages": ("gen_ai.output.messages", "gen_ai.completion", "output.value"),
    "gen_ai.system_instructions": ("gen_ai.system_instructions",),
    "gen_ai.agent.name": ("gen_ai.agent.name", "agent.name"),
    "gen_ai.agent.id": ("gen_ai.agent.id",),
    "gen_ai.conversation.id": ("gen_ai.conversation.id", "session.id", "gen_ai.thread.id"),
    "gen_ai.tool.name": ("gen_ai.tool.name", "tool.name"),
}
#: captured content, read to estimate tokens when a span carries none
CONTENT_INPUT = ("gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.tool.definitions")
CONTENT_OUTPUT = ("gen_ai.output.messages",)
#: per-message content of OpenLLMetry (`gen_ai.prompt.0.content`, `gen_ai.completion.0.content`) and
#: OpenInference (`llm.input_messages.0.message.content`): group 1 says input or output
INDEXED_CONTENT = re.compile(
    r"^(?:gen_ai\.(prompt|completion)\.\d+\.content|llm\.(input|output)_messages\.\d+\.message\.content)$")

#: alias -> (canonical name, preference: lower wins)
_CANONICAL: dict[str, tuple[str, int]] = {alias: (name, rank) for name, names in ALIASES.items()
                                          for rank, alias in enumerate(names)}


def normalise(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The span's attributes under their canonical names (aliases resolved, first preference
    wins, so a span carrying both `cache_write` and `cache_creation` counts them once); other
    attributes are kept as they are."""
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
