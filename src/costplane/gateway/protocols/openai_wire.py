"""What the OpenAI family's adapters share: the error shape, the credential, the chat stream meter,
and writing the enforced model, cap and mutations into a body.

Chat Completions, Embeddings, Responses and Azure OpenAI all answer errors as
`{"error": {"message", "type", "param", "code"}}` and authenticate with a bearer token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from costplane.config import ProviderConfig
from costplane.gateway.metering import billed_facts, response_id, served_usage
from costplane.gateway.protocols.base import (
    CredentialSource,
    Enforced,
    ErrorReply,
    ProtocolAdapter,
    SSEBuffer,
    StreamEvent,
    StreamMeter,
    sse_data,
)
from costplane.pricing.readers import openai_usage
from costplane.pricing.types import TokenUsage

__all__ = [
    "OPENAI_ERROR_TYPES",
    "ChatStreamMeter",
    "OpenAIWire",
    "common_params",
    "openai_error",
    "openai_stream_error",
    "response_usage",
    "write_enforced",
]

OPENAI_ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error", 401: "authentication_error", 402: "insufficient_quota", 403: "permission_error",
    404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
    415: "invalid_request_error", 429: "rate_limit_error", 502: "api_error", 503: "api_error", 504: "timeout",
}
_CEL_PARAMS = ("temperature", "top_p", "n", "user")


def response_usage(payload: Any) -> TokenUsage | None:
    """The usage of a plain OpenAI-family response body (Chat Completions, Embeddings), with its served tier."""
    usage = openai_usage(payload.get("usage")) if isinstance(payload, Mapping) else None
    return served_usage(usage, payload)


def openai_error(status: int, code: str, message: str, param: str | None = None) -> ErrorReply:
    body = {"error": {"message": message, "type": OPENAI_ERROR_TYPES.get(status, "api_error"), "param": param,
                      "code": code}}
    return ErrorReply(orjson.dumps(body))


def openai_stream_error(message: str, code: str) -> bytes:
    return b"data: " + orjson.dumps({"error": {"message": message, "type": "api_error", "code": code}}) + b"\n\n"


def common_params(body: Mapping[str, Any]) -> dict[str, Any]:
    """The request parameters policies see (CEL `request.*`) and what the body says about its price."""
    return {**{k: v for k, v in body.items() if k in _CEL_PARAMS}, **billed_facts(body)}


def write_enforced(body: dict[str, Any], enforced: Enforced, *, model_in_body: bool = True) -> None:
    """The enforced model and the policy's mutations, written into `body` (the cap is the caller's:
    each operation keeps it in its own field). `model_in_body=False` (the path names the model):
    a `model` the client sent anyway is overwritten, none is added."""
    if model_in_body or "model" in body:
        body["model"] = enforced.model
    body.update(enforced.mutations)


def bearer_headers(provider: ProviderConfig) -> dict[str, str]:
    return {"content-type": "application/json", "authorization": f"Bearer {provider.api_key() or 'costplane'}"}


class OpenAIWire(ProtocolAdapter):
    """The OpenAI family's error shape, credential and headers; operations add the rest."""

    family = "openai"
    credentials: tuple[CredentialSource, ...] = ("bearer", "x-api-key")
    path_prefixes: tuple[str, ...] = ("/v1/",)
    pass_headers: tuple[str, ...] = ("openai-organization", "openai-project")

    def error(self, status: int, code: str, message: str, param: str | None = None) -> ErrorReply:
        return openai_error(status, code, message, param)

    def stream_error(self, message: str, code: str) -> bytes:
        return openai_stream_error(message, code)

    def upstream_headers(self, provider: ProviderConfig, client_headers: Mapping[str, str]) -> dict[str, str]:
        headers = bearer_headers(provider)
        for name in self.pass_headers:
            value = client_headers.get(name)
            if value:
                headers[name] = value
        return headers


class ChatStreamMeter(StreamMeter):
    """Meters a Chat Completions SSE stream. `hide_usage_chunk` drops the usage-only chunk when the
    gateway (not the client) asked for it."""

    def __init__(self, hide_usage_chunk: bool) -> None:
        super().__init__()
        self._sse = SSEBuffer()
        self._hide = hide_usage_chunk
        self._usage: TokenUsage | None = None
        self.service_tier: str | None = None  # as the chunks report it (the tier served)

    @property
    def usage(self) -> TokenUsage | None:
        """The stream's usage, with the served tier when the usage chunk itself did not carry it."""
        if self._usage is None or self.service_tier is None:
            return self._usage
        return served_usage(self._usage, {"service_tier": self.service_tier})

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in self._sse.events(chunk):
            data = sse_data(event)
            if data is None:
                out.append((event + b"\n\n", False))
                continue
            if data.strip() == b"[DONE]":
                self.done = True
                out.append((event + b"\n\n", True))
                continue
            try:
                payload = orjson.loads(data)
            except orjson.JSONDecodeError:
                out.append((event + b"\n\n", False))
                continue
            if not isinstance(payload, dict):
                out.append((event + b"\n\n", False))
                continue
            usage = openai_usage(payload.get("usage"))
            if self.response_id is None:
                self.response_id = response_id(payload)
            if isinstance(payload.get("service_tier"), str):
                self.service_tier = payload["service_tier"]
            if usage is not None:
                self._usage = usage
            choices = payload.get("choices")
            if choices and isinstance(choices, list):
                for choice in choices:
                    delta = (choice.get("delta") if isinstance(choice, dict) else None) or {}
                    if delta.get("content") or delta.get("tool_calls") or delta.get("refusal"):
                        self.deltas += 1
            elif usage is not None and self._hide:
                continue
            out.append((event + b"\n\n", False))
        return out
