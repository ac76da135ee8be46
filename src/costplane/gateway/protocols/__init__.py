"""The registry of protocol adapters: the gateway builds its routes from `ADAPTERS`.

Each module in `ADAPTER_MODULES` exposes `ADAPTER`, an instance of a `ProtocolAdapter` subclass
(see `protocols.base`). Registering a protocol is one line here; its routes, its unknown-path
errors and its conformance case follow from the registry.
"""

from __future__ import annotations

from importlib import import_module

from costplane.gateway.protocols.base import ProtocolAdapter

__all__ = ["ADAPTERS", "ADAPTER_MODULES", "adapter_named", "load_adapters"]

ADAPTER_MODULES: tuple[str, ...] = (  # one line per protocol, in route-matching order
    "openai_chat",
    "openai_embeddings",
    "openai_responses",
    "anthropic_messages",
    "bedrock",
    "gemini",
    "azure_openai",
)


def load_adapters(modules: tuple[str, ...] = ADAPTER_MODULES) -> tuple[ProtocolAdapter, ...]:
    """The `ADAPTER` of each module of `costplane.gateway.protocols`, checked and unique by name."""
    adapters: list[ProtocolAdapter] = []
    for name in modules:
        module = import_module(f"costplane.gateway.protocols.{name}")
        adapter = getattr(module, "ADAPTER", None)
        if not isinstance(adapter, ProtocolAdapter):
            raise TypeError(f"costplane.gateway.protocols.{name}.ADAPTER must be a ProtocolAdapter instance")
        if any(a.name == adapter.name for a in adapters):
            raise ValueError(f"two protocol adapters are named {adapter.name!r}")
        adapters.append(adapter)
    return tuple(adapters)


ADAPTERS: tuple[ProtocolAdapter, ...] = load_adapters()


def adapter_named(name: str) -> ProtocolAdapter:
    for adapter in ADAPTERS:
        if adapter.name == name:
            return adapter
    raise KeyError(name)
