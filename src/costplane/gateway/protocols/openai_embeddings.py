"""OpenAI Embeddings: `POST /v1/embeddings` (never streamed, always deterministic)."""

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
from costplane.gateway.tokens import InputSize, measure_embeddings
from costplane.gateway.validate import BodyError, check_body
from costplane.gateway.validate_openai import EMBEDDINGS_BODY
from costplane.pricing.types import TokenUsage

__all__ = ["ADAPTER", "OpenAIEmbeddings", "embeddings_facts", "embeddings_upstream_body"]

EMBEDDINGS_BODY_MODEL_IN_PATH = replace(EMBEDDINGS_BODY,
                                        required=tuple(f for f in EMBEDDINGS_BODY.required if f != "model"))


def embeddings_facts(operation: str, body: dict[str, Any], model: str | None,
                     path_params: Mapping[str, str]) -> RequestFacts:
    """An Embeddings body, validated; `model` as the path names it, None when the body does."""
    try:
        check_body(EMBEDDINGS_BODY if model is None else EMBEDDINGS_BODY_MODEL_IN_PATH, body)
    except BodyError as exc:
        raise RequestError(exc.param, str(exc)) from None
    return RequestFacts(
        operation=operation, endpoint="embeddings", model=str(body["model"]) if model is None else model,
        body=body, size=measure_embeddings(body), max_tokens=None, stream=False, params=common_params(body),
        cacheable=True, path_params=path_params,
    )


def embeddings_upstream_body(facts: RequestFacts, enforced: Enforced, *, model_in_body: bool = True) -> bytes:
    body = dict(facts.body)
    write_enforced(body, enforced, model_in_body=model_in_body)
    return orjson.dumps(body)



class OpenAIEmbeddings(OpenAIWire):
    name = "openai-embeddings"
    routes = (AdapterRoute("POST", "/v1/embeddings", "embeddings"),)

    def parse(self, route: AdapterRoute, incoming: Incoming, settings: GatewaySettings) -> RequestFacts:
        return embeddings_facts(route.operation, parse_json_object(incoming.body), None, incoming.path_params)

    def build_upstream(self, facts: RequestFacts, enforced: Enforced, incoming: Incoming) -> UpstreamRequest:
        return UpstreamRequest("POST", enforced.provider.base_url + "/embeddings",
                               self.upstream_headers(enforced.provider, incoming.headers),
                               embeddings_upstream_body(facts, enforced))

    def usage(self, facts: RequestFacts, payload: Any) -> TokenUsage | None:
        return response_usage(payload)

    def measure(self, body: Mapping[str, Any]) -> InputSize:
        return measure_embeddings(body)

    def stream_meter(self, facts: RequestFacts) -> StreamMeter:
        return ChatStreamMeter(hide_usage_chunk=False)  # never asked for: embeddings do not stream


ADAPTER = OpenAIEmbeddings()
