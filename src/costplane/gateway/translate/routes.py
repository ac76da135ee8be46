"""Which protocol family serves a routed-to model, and whether a route can be translated to it.

A `route` policy or a budget's `on_exceed: {route: …}` may name a model that only another vendor's
protocol serves. The gateway then translates the chat request and its reply (see the package). A
route to a model no translatable family serves is refused when the bundle loads, naming the file
and line, rather than at the first request it would apply to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from costplane.config import Config, ProviderConfig
from costplane.policy.types import BudgetSpec, PolicySpec, SourceLocation, ValidationIssue

__all__ = ["CHAT_WIRE_OF_FAMILY", "route_issues", "serving_families"]

#: the chat protocol a routed request is written in for each family that can take one
CHAT_WIRE_OF_FAMILY: Mapping[str, str] = {
    "openai": "openai-chat", "azure-openai": "openai-chat", "anthropic": "anthropic-messages", "gemini": "gemini",
}


def serving_families(config: Config, model: str) -> list[tuple[ProviderConfig, str]]:
    """Every (provider, upstream model) that serves `model`, in configuration order."""
    served = []
    for provider in config.providers:
        resolved = provider.aliases.get(model, model)
        if provider.serves(resolved) or model in provider.aliases:
            served.append((provider, resolved))
    return served


def _targets(policies: Iterable[PolicySpec], budgets: Iterable[BudgetSpec]) -> list[tuple[str, str, SourceLocation]]:
    found: list[tuple[str, str, SourceLocation]] = []
    for policy in policies:
        target = policy.set.get("model") if policy.effect == "route" and policy.hook == "llm.request" else None
        if isinstance(target, str):
            found.append(("set.model", target, policy.location))
    for budget in budgets:
        if budget.on_exceed == "route" and budget.route_to:
            found.append(("on_exceed.route", budget.route_to, budget.location))
    return found


def route_issues(config: Config, policies: Iterable[PolicySpec],
                 budgets: Iterable[BudgetSpec]) -> list[ValidationIssue]:
    """Routes whose target only families the gateway cannot translate into serve (a configuration
    with no providers, as the CLI's offline commands load, is not checked)."""
    if not config.providers:
        return []
    issues = []
    for field_name, target, location in _targets(policies, budgets):
        served = serving_families(config, target)
        if not served:
            continue  # unserved targets are answered per request (route_unavailable), as before
        if not any(provider.protocol in CHAT_WIRE_OF_FAMILY for provider, _ in served):
            families = sorted({provider.protocol for provider, _ in served})
            issues.append(ValidationIssue(
                location, field_name,
                f"routes to {target!r}, which only the {', '.join(families)} protocol serves; a request cannot be "
                f"translated into it (routes across vendors reach: {', '.join(sorted(CHAT_WIRE_OF_FAMILY))})"))
    return issues
