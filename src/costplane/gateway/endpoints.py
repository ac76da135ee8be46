"""The three governed endpoints and what differs between them: validation, sizing, usage."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from costplane.gateway.metering import anthropic_usage, openai_usage
from costplane.gateway.tokens import InputSize, measure_anthropic, measure_embeddings, measure_openai_chat
from costplane.pricing.types import TokenUsage

__all__ = ["ANTHROPIC_MESSAGES", "ENDPOINTS", "OPENAI_CHAT", "OPENAI_EMBEDDINGS", "BodyError", "Endpoint"]

MAX_TOKENS_LIMIT = 1_000_000


class BodyError(ValueError):
    def __init__(self, param: str, message: str) -> None:
        self.param = param
        super().__init__(message)


def _require_model(body: Mapping[str, Any]) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BodyError("model", "'model' is required and must be a non-empty string")


def _optional_int(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOKENS_LIMIT:
        raise BodyError(name, f"'{name}' must be an integer from 1 to {MAX_TOKENS_LIMIT}, got {value!r}")
    return value


def _messages(body: Mapping[str, Any]) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BodyError("messages", "'messages' is required and must be a non-empty array")
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise BodyError(f"messages[{index}]", f"messages[{index}] must be an object with a 'role'")


def _validate_chat(body: Mapping[str, Any]) -> int | None:
    _require_model(body)
    _messages(body)
    for name in ("max_tokens", "max_completion_tokens"):
        _optional_int(body, name)
    if body.get("n") not in (None, 1):
        raise BodyError("n", "only n=1 is supported by the governed gateway")
    return _optional_int(body, "max_completion_tokens") or _optional_int(body, "max_tokens")


def _validate_embeddings(body: Mapping[str, Any]) -> int | None:
    _require_model(body)
    value = body.get("input")
    ok = isinstance(value, str) or (isinstance(value, list) and value and all(
        isinstance(v, str | int) or (isinstance(v, list) and all(isinstance(i, int) for i in v)) for v in value))
    if not ok:
        raise BodyError("input", "'input' must be a string, an array of strings, or token arrays")
    return None


def _validate_messages(body: Mapping[str, Any]) -> int | None:
    _require_model(body)
    _messages(body)
    value = _optional_int(body, "max_tokens")
    if value is None:
        raise BodyError("max_tokens", "'max_tokens' is required (an integer ≥ 1)")
    return value


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


OPENAI_CHAT = Endpoint("openai", "chat.completions", "/chat/completions", _validate_chat, measure_openai_chat,
                       openai_usage, True)
OPENAI_EMBEDDINGS = Endpoint("openai", "embeddings", "/embeddings", _validate_embeddings, measure_embeddings,
                             openai_usage, False)
ANTHROPIC_MESSAGES = Endpoint("anthropic", "messages", "/messages", _validate_messages, measure_anthropic,
                              anthropic_usage, True)
ENDPOINTS = (OPENAI_CHAT, OPENAI_EMBEDDINGS, ANTHROPIC_MESSAGES)
