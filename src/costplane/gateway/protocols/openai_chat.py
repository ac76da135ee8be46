"""OpenAI Chat Completions: `POST /v1/chat/completions`, plain and streamed (SSE)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson

from costplane.config import GatewaySettings
from costplane.gateway.protocols.base import (
    AdapterRoute,
    Enforced,
    Incoming,
    RequestError,
    RequestFacts,
    StreamMeter,
    UpstreamRequest,
    parse_json_object,
)
from costplane.gateway.protocols.openai_wire import (
    ChatStreamMeter,
    OpenAIWire,
    common_params,
    response_usage,
    write_enforced,
)
from costplane.gateway.tokens import InputSize, measure_openai_chat
from costplane.gateway.validate import BodyError, check_body
from costplane.gateway.validate_openai import CHAT_BODY
from costplane.pricing.readers import tool_use_limits
from costplane.pricing.types import TokenUsage

__all__ = ["ADAPTER", "CHAT_BODY_MODEL_IN_PATH", "OpenAIChat", "chat_facts", "chat_meter", "chat_upstream_body",
           "client_max_tokens"]


def client_max_tokens(body: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = body.get(name)
        if value is not None:
            return int(value)
    return None


#: a chat body whose model is in the path (Azure deployments): `model` may be left out
CHAT_BODY_MODEL_IN_PATH = replace(CHAT_BODY, required=tuple(f for f in CHAT_BODY.required if f != "model"))


def chat_facts(operation: str, body: dict[str, Any], model: str | None, path_params: Mapping[str, str]) -> RequestFacts:
    """A Chat Completions body, validated (raises RequestError naming the field); `model` as the
    path names it, None when the body does."""
    try:
        check_body(CHAT_BODY if model is None else CHAT_BODY_MODEL_IN_PATH, body)
    except BodyError as exc:
        raise RequestError(exc.param, str(exc)) from None
    if body.get("n") not in (None, 1):
        raise RequestError("n", "n: only n=1 is supported by the governed gateway")
    if body.get("stream_options") is not None and body.get("stream") is not True:
        raise RequestError("stream_options", "stream_options: only allowed when 'stream' is true")
    tool_uses, uncapped = tool_use_limits(body)
    stream = body.get("stream") is True
    return RequestFacts(
        operation=operation, endpoint="chat.completions", model=str(body["model"]) if model is None else model,
        body=body,
        size=measure_openai_chat(body), max_tokens=client_max_tokens(body, "max_completion_tokens", "max_tokens"),
        stream=stream, params=common_params(body), tool_uses=tool_uses, uncapped=uncapped,
        cacheable=not stream and body.get("temperature") == 0 and body.get("n") in (None, 1),
        path_params=path_params,
    )


def chat_upstream_body(facts: RequestFacts, enforced: Enforced, *, model_in_body: bool = True) -> bytes:
    """The client's body with the enforced model, cap (in the field the client used) and mutations;
    a stream always asks for its usage (the meter hides it again when the client did not)."""
    body = dict(facts.body)
    write_enforced(body, enforced, model_in_body=model_in_body)
    body["max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"] = enforced.max_tokens
    if facts.stream:
        body["stream_options"] = {**(facts.body.get("stream_options") or {}), "include_usage": True}
    return orjson.dumps(body)


def chat_meter(facts: RequestFacts) -> ChatStreamMeter:
    options = facts.body.get("stream_options") or {}
    return ChatStreamMeter(hide_usage_chunk=options.get("include_usage") is not True)



class OpenAIChat(OpenAIWire):
    name = "openai-chat"
    routes = (AdapterRoute("POST", "/v1/chat/completions", "chat.completions"),)

    def parse(self, route: AdapterRoute, incoming: Incoming, settings: GatewaySettings) -> RequestFacts:
        return chat_facts(route.operation, parse_json_object(incoming.body), None, incoming.path_params)

    def build_upstream(self, facts: RequestFacts, enforced: Enforced, incoming: Incoming) -> UpstreamRequest:
        return UpstreamRequest("POST", enforced.provider.base_url + "/chat/completions",
                               self.upstream_headers(enforced.provider, incoming.headers),
                               chat_upstream_body(facts, enforced))

    def usage(self, facts: RequestFacts, payload: Any) -> TokenUsage | None:
        return response_usage(payload)

    def measure(self, body: Mapping[str, Any]) -> InputSize:
        return measure_openai_chat(body)

    def stream_meter(self, facts: RequestFacts) -> StreamMeter:
        return chat_meter(facts)


ADAPTER = OpenAIChat()
