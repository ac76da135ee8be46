"""What a plan's `configuration` says beyond the planned values: each resource's provider region and the
resources it references (an auto-scaling group's launch template, a node pool's cluster).

Addresses are compared without instance keys (``module.a[0].aws_instance.b[1]`` → ``module.a.aws_instance.b``),
so every instance of a counted resource shares its configuration's facts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PlanConfig", "config_address", "read_config"]

_INDEX = re.compile(r"\[[^\]]*\]")
_REGION_KEYS = ("region", "location", "zone")


def config_address(address: str) -> str:
    """The configuration address of a resource instance: instance keys dropped."""
    return _INDEX.sub("", address)


@dataclass(frozen=True, slots=True)
class PlanConfig:
    regions: Mapping[str, str] = field(default_factory=dict)  # config address -> its provider's region
    references: Mapping[str, frozenset[str]] = field(default_factory=dict)  # config address -> referenced ones
    providers: Mapping[str, str] = field(default_factory=dict)  # provider config key -> region

    def region_of(self, address: str, resource_type: str = "") -> str:
        """The resource's provider region; for a resource the configuration does not list, its module's (or the
        root module's) provider of the same name."""
        found = self.regions.get(config_address(address))
        if found:
            return found
        name = resource_type.split("_", 1)[0]
        module = config_address(address).rsplit(".", 2)[0] if address.startswith("module.") else ""
        return self.providers.get(f"{module}:{name}" if module else name, "") or self.providers.get(name, "")

    def references_of(self, address: str) -> frozenset[str]:
        return self.references.get(config_address(address), frozenset())


def _walk_references(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        refs = node.get("references")
        if isinstance(refs, list):
            yield from (r for r in refs if isinstance(r, str))
        for key, value in node.items():
            if key != "references":
                yield from _walk_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_references(item)


def _resource_refs(refs: Iterator[str], prefix: str) -> frozenset[str]:
    out = set()
    for ref in refs:
        parts = ref.split(".")
        if parts[0] in ("var", "local", "each", "count", "path", "terraform", "self", "data", "module"):
            continue
        if len(parts) >= 2:
            out.add(prefix + config_address(".".join(parts[:2])))
    return frozenset(out)


def _value(expression: Any, variables: Mapping[str, Any]) -> str:
    if not isinstance(expression, Mapping):
        return ""
    constant = expression.get("constant_value")
    if isinstance(constant, str):
        return constant
    for ref in expression.get("references") or []:
        if isinstance(ref, str) and ref.startswith("var."):
            var = variables.get(ref[4:])
            if isinstance(var, Mapping) and isinstance(var.get("value"), str):
                return str(var["value"])
    return ""


def _provider_regions(config: Mapping[str, Any], variables: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    providers = config.get("provider_config")
    if not isinstance(providers, Mapping):
        return out
    for key, provider in providers.items():
        if not isinstance(provider, Mapping):
            continue
        expressions = provider.get("expressions")
        if not isinstance(expressions, Mapping):
            continue
        for name in _REGION_KEYS:
            region = _value(expressions.get(name), variables if ":" not in str(key) else {})
            if region:
                out[str(key)] = region
                break
    return out


def read_config(data: Mapping[str, Any]) -> PlanConfig:
    """Provider regions and references of every configured resource (empty when the plan has no configuration)."""
    config = data.get("configuration")
    if not isinstance(config, Mapping):
        return PlanConfig()
    variables = data.get("variables") if isinstance(data.get("variables"), Mapping) else {}
    providers = _provider_regions(config, variables or {})
    regions: dict[str, str] = {}
    references: dict[str, frozenset[str]] = {}

    def visit(module: Any, prefix: str, call_path: str) -> None:
        if not isinstance(module, Mapping):
            return
        for resource in module.get("resources") or []:
            if not isinstance(resource, Mapping) or not isinstance(resource.get("address"), str):
                continue
            address = prefix + str(resource["address"])
            references[address] = _resource_refs(_walk_references(resource.get("expressions")), prefix)
            key = str(resource.get("provider_config_key") or "")
            name = key.rsplit(":", 1)[-1]
            for candidate in (key, f"module.{key}" if key else "", f"{call_path}:{name}" if call_path else "",
                              name):
                if candidate and candidate in providers:
                    regions[address] = providers[candidate]
                    break
        calls = module.get("module_calls")
        if isinstance(calls, Mapping):
            for call, body in calls.items():
                if isinstance(body, Mapping):
                    visit(body.get("module"), f"{prefix}module.{call}.", f"{prefix}module.{call}".rstrip("."))

    visit(config.get("root_module"), "", "")
    return PlanConfig(regions, references, providers)
