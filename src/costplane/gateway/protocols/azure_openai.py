"""Azure OpenAI: the deployment paths and the v1 paths, Chat Completions and Embeddings.

    POST /openai/deployments/{deployment}/chat/completions?api-version=…   the model is the deployment
    POST /openai/deployments/{deployment}/embeddings?api-version=…
    POST /openai/v1/chat/completions                                       the body's model names the deployment
    POST /openai/v1/embeddings

The client authenticates with its costplane key as `api-key` (as `openai.AzureOpenAI` sends it) or
as a bearer token. An `azure-openai` provider maps each deployment to its model
(`deployments: {prod-4o: gpt-4o}`): the model prices the call, and a call routed to another model
goes to the deployment serving that model. Bodies, usage and streams are OpenAI's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from costplane.config import GatewaySettings, ProviderConfig
from costplane.gateway.protocols.base import (
    AdapterRoute,
    CredentialSource,
    Enforced,
    Incoming,
    RequestError,
    RequestFacts,
    StreamMeter,
    UpstreamRequest,
    parse_json_object,
)
from costplane.gateway.protocols.openai_chat import chat_facts, chat_meter, chat_upstream_body
from costplane.gateway.protocols.openai_embeddings import (
    embeddings_facts,
    embeddings_upstream_body,
)
from costplane.gateway.protocols.openai_wire import OpenAIWire, response_usage
from costplane.gateway.tokens import InputSize, measure_openai_chat
from costplane.pricing.types import TokenUsage

__all__ = ["ADAPTER", "AzureOpenAI", "deployment_for"]

_CHAT, _EMBED = "chat.completions", "embeddings"
_DEPLOYMENT_OPS = {"deployment.chat.completions": _CHAT, "deployment.embeddings": _EMBED}
_V1_OPS = {"v1.chat.completions": _CHAT, "v1.embeddings": _EMBED}


def deployment_for(provider: ProviderConfig, asked: str, model: str) -> str:
    """The deployment to call for `model`: the one the client named when it serves that model,
    else the provider's deployment of the model, else the model's own name (deployments are often
    named after their model)."""
    if asked == model or provider.deployments.get(asked) == model:
        return asked
    return provider.deployment_for(model) or model


class AzureOpenAI(OpenAIWire):
    family = "azure-openai"
    name = "azure-openai"
    routes = (
        AdapterRoute("POST", "/openai/deployments/{deployment}/chat/completions", "deployment.chat.completions"),
        AdapterRoute("POST", "/openai/deployments/{deployment}/embeddings", "deployment.embeddings"),
        AdapterRoute("POST", "/openai/v1/chat/completions", "v1.chat.completions"),
        AdapterRoute("POST", "/openai/v1/embeddings", "v1.embeddings"),
    )
    credentials: tuple[CredentialSource, ...] = ("api-key", "bearer")
    path_prefixes = ("/openai/",)
    pass_headers = ()

    def parse(self, route: AdapterRoute, incoming: Incoming, settings: GatewaySettings) -> RequestFacts:
        body = parse_json_object(incoming.body)
        in_path = route.operation in _DEPLOYMENT_OPS
        model: str | None = None
        if in_path:
            if not incoming.query.get("api-version"):
                raise RequestError("api-version", "api-version query parameter: required on a deployment path, "
                                                  "e.g. ?api-version=2024-10-21")
            model = incoming.path_params["deployment"]
        operation = _DEPLOYMENT_OPS.get(route.operation) or _V1_OPS[route.operation]
        if operation == _CHAT:
            return chat_facts(route.operation, body, model, incoming.path_params)
        return embeddings_facts(route.operation, body, model, incoming.path_params)

    def build_upstream(self, facts: RequestFacts, enforced: Enforced, incoming: Incoming) -> UpstreamRequest:
        provider = enforced.provider
        deployment = deployment_for(provider, facts.model, enforced.model)
        operation = _DEPLOYMENT_OPS.get(facts.operation) or _V1_OPS[facts.operation]
        chat = operation == _CHAT
        in_path = facts.operation in _DEPLOYMENT_OPS
        version = provider.api_version or incoming.query.get("api-version")
        if in_path:
            path = f"/openai/deployments/{quote(deployment, safe='')}/{operation.replace('.', '/')}"
        else:
            path = f"/openai/v1/{operation.replace('.', '/')}"
        query = f"?{urlencode({'api-version': version})}" if version else ""
        sent = Enforced(provider, deployment, enforced.max_tokens, enforced.mutations)  # the model is the deployment
        body = (chat_upstream_body(facts, sent, model_in_body=not in_path) if chat
                else embeddings_upstream_body(facts, sent, model_in_body=not in_path))
        headers = {"content-type": "application/json", "api-key": provider.api_key() or "costplane"}
        return UpstreamRequest("POST", provider.base_url + path + query, headers, body)

    def usage(self, facts: RequestFacts, payload: Any) -> TokenUsage | None:
        return response_usage(payload)

    def measure(self, body: Mapping[str, Any]) -> InputSize:
        return measure_openai_chat(body)

    def stream_meter(self, facts: RequestFacts) -> StreamMeter:
        return chat_meter(facts)


ADAPTER = AzureOpenAI()
