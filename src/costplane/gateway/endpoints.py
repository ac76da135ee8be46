"""The three governed endpoints and what differs between them: validation, sizing, usage.

Each endpoint validates its body against its protocol's declarative spec (`validate_openai`,
`validate_anthropic`) and then the few rules the gateway adds (one choice per call).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from costplane.gateway.metering import anthropic_usage, openai_usage
from costplane.gateway.tokens import InputSize, measure_anthropic, measure_embeddings, measure_openai_chat
from costplane.gateway.validate import BodyError, check_body
from costplane.gateway.validate_anthropic import MESSAGES_BODY
from costplane.gateway.validate_openai import CHAT_BODY, EMBEDDINGS_BODY
from costplane.pricing.readers import cap_tool_uses, tool_use_limits
from costplane.pricing.types import TokenUsage

__all__ = ["ANTHROPIC_MESSAGES", "ENDPOINTS", "OPENAI_CHAT", "OPENAI_EMBEDDINGS", "BodyError", "Endpoint"]



def _client_max(body: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = body.get(name)
        if value is not None:
            return int(value)
    return None


def _validate_chat(body: Mapping[str, Any]) -> int | None:
    check_body(CHAT_BODY, body)
    if body.get("n") not in (None, 1):
        raise BodyError("n", "only n=1 is supported by the governed gateway")
    if body.get("stream_options") is not None and body.get("stream") is not True:
        raise BodyError("stream_options", "only allowed when 'stream' is true")
    return _client_max(body, "max_completion_tokens", "max_tokens")


def _validate_embeddings(body: Mapping[str, Any]) -> int | None:
    check_body(EMBEDDINGS_BODY, body)
    return None


def _validate_messages(body: Mapping[str, Any]) -> int | None:
    check_body(MESSAGES_BODY, body)
    return _client_max(body, "max_tokens")


@dataclass(frozen=True, slots=True)
class Endpoint:
    protocol: str  # openai | anthropic
    name: str  # chat.completions | embeddings | messages
    upstream_path: str  # appended to the provider's base_url (which ends in /v1)
    validate: Callable[[Mapping[str, Any]], int | None]  # raises BodyError; returns the client's max tokens
    measure: Callable[[Mapping[str, Any]], InputSize]
    usage: Callable[[Mapping[str, Any] | None], TokenUsage | None]
    streams: bool

    def response_usage(self, payload: Any) -> TokenUsage | None:
        return self.usage(payload.get("usage")) if isinstance(payload, Mapping) else None

    def set_limits(self, body: dict[str, Any], max_tokens: int) -> None:
        """Write the enforced output cap into the upstream body, in the field the client used."""
        if self.name == "embeddings":
            return
        if self.name == "chat.completions" and "max_completion_tokens" in body:
            body["max_completion_tokens"] = max_tokens
            return
        body["max_tokens"] = max_tokens

    def cap_tool_uses(self, body: dict[str, Any], default_max_uses: int) -> tuple[dict[str, int], dict[str, str]]:
        """Set `max_uses` on each Anthropic server tool billed per use that has none (in `body`, which
        is then forwarded), and return the most calls of each per-call unit the request can incur and
        the units it enables with no cap (by field): what the worst-case bound counts."""
        if self.protocol == "anthropic":
            cap_tool_uses(body, default_max_uses)
        return tool_use_limits(body)


OPENAI_CHAT = Endpoint("openai", "chat.completions", "/chat/completions", _validate_chat, measure_openai_chat,
                       openai_usage, True)
OPENAI_EMBEDDINGS = Endpoint("openai", "embeddings", "/embeddings", _validate_embeddings, measure_embeddings,
                             openai_usage, False)
ANTHROPIC_MESSAGES = Endpoint("anthropic", "messages", "/messages", _validate_messages, measure_anthropic,
                              anthropic_usage, True)
ENDPOINTS = (OPENAI_CHAT, OPENAI_EMBEDDINGS, ANTHROPIC_MESSAGES)
