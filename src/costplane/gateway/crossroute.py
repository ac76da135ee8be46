"""A call admitted to a model of another protocol family: the request written in the served protocol.

When a `route` policy or a budget's `on_exceed: {route: …}` sends a chat request to a model that
only another vendor's protocol serves, the gateway reads the client's request into the neutral chat
(`gateway.translate`), writes it in the served protocol, and lets that protocol's adapter parse,
build and meter the upstream call like any other. The reply, plain or streamed, is translated back
(`translate_reply`, `StreamTranslator`): the client always gets its own protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from costplane.config import GatewaySettings
from costplane.gateway.protocols import adapter_named
from costplane.gateway.protocols.base import AdapterRoute, Incoming, ProtocolAdapter, RequestError, RequestFacts
from costplane.gateway.translate import StreamTranslator, Untranslatable, read_chat, write_chat
from costplane.gateway.translate.routes import CHAT_WIRE_OF_FAMILY

__all__ = ["CLIENT_WIRES", "RoutedCall", "plan_route"]

#: the translatable chat protocol of each client adapter, and its operations that are chat calls
CLIENT_WIRES: Mapping[str, tuple[str, frozenset[str]]] = {
    "openai-chat": ("openai-chat", frozenset({"chat.completions"})),
    "azure-openai": ("openai-chat", frozenset({"deployment.chat.completions", "v1.chat.completions"})),
    "openai-responses": ("openai-responses", frozenset({"create"})),
    "anthropic-messages": ("anthropic-messages", frozenset({"messages"})),
    "gemini": ("gemini", frozenset({"generate", "stream"})),
}
#: served family -> (adapter, operation of a plain call, operation of a streamed call)
_SERVED: Mapping[str, tuple[str, str, str]] = {
    "openai": ("openai-chat", "chat.completions", "chat.completions"),
    "azure-openai": ("azure-openai", "v1.chat.completions", "v1.chat.completions"),
    "anthropic": ("anthropic-messages", "messages", "messages"),
    "gemini": ("gemini", "generate", "stream"),
}


@dataclass(frozen=True, slots=True)
class RoutedCall:
    """The served side of a translated call: its adapter, request facts and request."""

    client_wire: str
    served_wire: str
    served: ProtocolAdapter
    facts: RequestFacts
    incoming: Incoming
    include_usage: bool  # the client (Chat Completions) asked for the usage chunk

    def stream_translator(self, client_model: str) -> StreamTranslator:
        return StreamTranslator(self.served_wire, self.client_wire, client_model, include_usage=self.include_usage)


def _route(adapter: ProtocolAdapter, operation: str) -> AdapterRoute:
    return next(r for r in adapter.routes if r.operation == operation and r.governed)


def plan_route(client: ProtocolAdapter, facts: RequestFacts, family: str, model: str,
               settings: GatewaySettings) -> RoutedCall:
    """The request `facts` of `client` as a call of `family` to `model`; RequestError (400
    `untranslatable`, naming the field) when the request cannot be carried across."""
    wire, chat_operations = CLIENT_WIRES.get(client.name, ("", frozenset()))
    served_wire = CHAT_WIRE_OF_FAMILY.get(family)
    served_names = _SERVED.get(family)
    if not wire or facts.operation not in chat_operations or served_wire is None or served_names is None:
        raise RequestError("model", f"model: routed to {model!r}, served only by the {family} protocol, but a "
                           f"{client.name} {facts.operation} request cannot be translated into it",
                           code="untranslatable")
    try:
        chat = read_chat(wire, facts.body, model=facts.model, stream=facts.stream)
        body = write_chat(served_wire, chat, model, default_max_tokens=settings.default_max_tokens)
    except Untranslatable as exc:
        raise RequestError(exc.field_path, f"{exc} (routed to {model!r}, served by the {family} protocol)",
                           code="untranslatable") from None
    served = adapter_named(served_names[0])
    route = _route(served, served_names[2] if facts.stream else served_names[1])
    path_params = {"model": model} if "{model}" in route.path else {}
    path = route.path.replace("{model}", model)
    query = {"alt": "sse"} if family == "gemini" and facts.stream else {}
    incoming = Incoming("POST", path, path_params, query, {}, orjson.dumps(body))
    served_facts = served.parse(route, incoming, settings)
    options = facts.body.get("stream_options")
    include_usage = isinstance(options, Mapping) and options.get("include_usage") is True
    return RoutedCall(wire, served_wire, served, served_facts, incoming, include_usage)
