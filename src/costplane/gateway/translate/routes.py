"""Which protocol family serves a routed-to model, and whether a route can be translated to it.

A `route` policy or a budget's `on_exceed: {route: …}` may name a model that only another vendor's
protocol serves. The gateway then translates the chat request and its reply (see the package). A
route to a model that only untranslatable families serve (Bedrock) can only apply to requests of
that family: unless its condition pins `request.endpoint` to that family's operations
(`request.endpoint == "converse"`), it is refused when the bundle loads, naming the file and line,
rather than at the first request of another vendor it would apply to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from costplane.config import Config, ProviderConfig
from costplane.policy.types import BudgetSpec, PolicySpec, SourceLocation, ValidationIssue

__all__ = ["CHAT_WIRE_OF_FAMILY", "ENDPOINTS_OF_FAMILY", "pinned_endpoints", "route_issues", "serving_families"]

#: the chat protocol a routed request is written in for each family that can take one
CHAT_WIRE_OF_FAMILY: Mapping[str, str] = {
    "openai": "openai-chat", "azure-openai": "openai-chat", "anthropic": "anthropic-messages", "gemini": "gemini",
}


#: the operations (`request.endpoint`) of each family a request cannot be translated into or out of
ENDPOINTS_OF_FAMILY: Mapping[str, frozenset[str]] = {"bedrock": frozenset({"converse", "invoke"})}
_PINNED = re.compile(r"""request\.endpoint\s*(?:==\s*["']([^"']+)["']|in\s*\[([^\]]*)\])""")


def pinned_endpoints(condition: str) -> set[str]:
    """The endpoints a CEL condition compares `request.endpoint` with (== or in [...]); empty when none."""
    found: set[str] = set()
    for single, listed in _PINNED.findall(condition):
        found.update([single] if single else re.findall(r"""["']([^"']+)["']""", listed))
    return found


def serving_families(config: Config, model: str) -> list[tuple[ProviderConfig, str]]:
    """Every (provider, upstream model) that serves `model`, in configuration order."""
    served = []
    for provider in config.providers:
        resolved = provider.aliases.get(model, model)
        if provider.serves(resolved) or model in provider.aliases:
            served.append((provider, resolved))
    return served


def _targets(policies: Iterable[PolicySpec],
             budgets: Iterable[BudgetSpec]) -> list[tuple[str, str, SourceLocation, str]]:
    """(field, routed-to model, where, the condition selecting the requests it applies to)"""
    found: list[tuple[str, str, SourceLocation, str]] = []
    for policy in policies:
        target = policy.set.get("model") if policy.effect == "route" and policy.hook == "llm.request" else None
        if isinstance(target, str):
            found.append(("set.model", target, policy.location, policy.when))
    for budget in budgets:
        if budget.on_exceed == "route" and budget.route_to:
            found.append(("on_exceed.route", budget.route_to, budget.location, budget.scope))
    return found


def route_issues(config: Config, policies: Iterable[PolicySpec],
                 budgets: Iterable[BudgetSpec]) -> list[ValidationIssue]:
    """Routes whose target only families the gateway cannot translate into serve (a configuration
    with no providers, as the CLI's offline commands load, is not checked)."""
    if not config.providers:
        return []
    issues = []
    for field_name, target, location, condition in _targets(policies, budgets):
        served = serving_families(config, target)
        if not served:
            continue  # unserved targets are answered per request (route_unavailable), as before
        if any(provider.protocol in CHAT_WIRE_OF_FAMILY for provider, _ in served):
            continue
        families = sorted({provider.protocol for provider, _ in served})
        own = frozenset().union(*(ENDPOINTS_OF_FAMILY.get(f, frozenset()) for f in families))
        pinned = pinned_endpoints(condition)
        if pinned and pinned <= own:
            continue  # it applies to that family's own requests only
        issues.append(ValidationIssue(
            location, field_name,
            f"routes to {target!r}, which only the {', '.join(families)} protocol serves; a request of another "
            f"protocol cannot be translated into it — pin the condition to that protocol's requests "
            f"(request.endpoint == {sorted(own)[0]!r}) or route to a model of: "
            f"{', '.join(sorted(CHAT_WIRE_OF_FAMILY))}"))
    return issues
