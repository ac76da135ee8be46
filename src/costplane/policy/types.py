"""What the bundle declares (policies, budgets, test cases) and what the engine decides.

The loader (`costplane.policy.bundle`) builds these from YAML; the engine
(`costplane.policy.engine`) evaluates them. Neither knows anything of HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from costplane.ledger.windows import Window
from costplane.policy.hookschema import HOOK_SCHEMAS

__all__ = [
    "EFFECTS",
    "HOOKS",
    "HOOK_EFFECTS",
    "BudgetSpec",
    "BundleError",
    "MatchedPolicy",
    "PolicyDecision",
    "PolicySpec",
    "PolicyTestCase",
    "SourceLocation",
    "ValidationIssue",
]

#: Hook points: where a decision is asked for. Every hook sees the CEL variables `ctx` (the
#: attribution context) and `request` (the facts of what is being decided at that hook, declared
#: field by field in costplane.policy.hookschema, the source of the hooks and their effects):
#: llm.request (an LLM call, before it is sent), environment.launch (a governed environment,
#: before it starts), environment.extend (its TTL extension), environment.runtime (a running
#: environment: idle, budget exhausted, …), iac.plan (one resource of a terraform plan),
#: slo.breach (an economic SLO that is breached), spend.record (spend observed after the fact).
HOOKS: tuple[str, ...] = tuple(schema.hook for schema in HOOK_SCHEMAS)
#: Effects, in the order of their precedence when several policies match.
EFFECTS: tuple[str, ...] = (
    "deny", "require_approval", "teardown", "suspend", "throttle", "route", "mutate", "notify", "allow",
)
#: The effects each hook accepts. `require_approval`, `suspend`, `teardown` and `throttle` are
#: hook-specific actions: the engine reports them (PolicyDecision.actions) and the caller acts.
#: spend.record only notifies: the money is already spent.
HOOK_EFFECTS: dict[str, tuple[str, ...]] = {schema.hook: schema.effects for schema in HOOK_SCHEMAS}


@dataclass(frozen=True, slots=True)
class SourceLocation:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    location: SourceLocation
    field: str  # dotted path in the document, e.g. "window.timezone"
    message: str  # what is wrong and what was expected

    def __str__(self) -> str:
        return f"{self.location}: {self.field}: {self.message}"


class BundleError(ValueError):
    """A bundle that does not load; carries every issue found, not just the first."""

    def __init__(self, issues: list[ValidationIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


@dataclass(frozen=True, slots=True)
class PolicySpec:
    name: str
    hook: str
    when: str  # CEL source; "true" when omitted
    effect: str
    set: Mapping[str, Any] = field(default_factory=dict)  # route: {model}, mutate: {max_tokens, …}
    reason: str = ""
    priority: int = 0
    location: SourceLocation = SourceLocation("<memory>", 0)


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """A budget. At least one of amount_nano, max_calls, max_concurrent is set.

    `per` partitions the budget: one counter per distinct value tuple (e.g. per
    run). `on_exceed` is "deny" or "route"; with "route", `route_to` is the
    cheaper model a request is degraded to while this budget has no room.
    """

    name: str
    scope: str  # CEL selector over ctx (and request); "true" = everything
    window: Window
    amount_nano: int | None = None
    max_calls: int | None = None
    max_concurrent: int | None = None
    per: tuple[str, ...] = ()
    hard: bool = True
    alerts: tuple[int, ...] = ()  # percent thresholds
    on_exceed: str = "deny"
    route_to: str | None = None
    fail_open: bool = False  # when spend cannot be verified: False = deny (default)
    description: str = ""
    location: SourceLocation = SourceLocation("<memory>", 0)


@dataclass(frozen=True, slots=True)
class PolicyTestCase:
    name: str
    hook: str
    context: Mapping[str, Any]
    request: Mapping[str, Any]
    expect: Mapping[str, Any]  # effect, model, max_tokens, policies, reason_contains, budgets
    location: SourceLocation = SourceLocation("<memory>", 0)


@dataclass(frozen=True, slots=True)
class MatchedPolicy:
    name: str
    effect: str
    reason: str
    priority: int = 0


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """What the policies say about one request, before any budget is consulted.

    effect: "deny" if any matching policy denies; else the strongest matching
    action in EFFECTS order (require_approval, teardown, suspend, throttle); else
    "route" if a route matched (the highest priority route wins, ties by bundle
    order); else "mutate" if a mutation matched; else "allow". Mutations and
    notifications ride along whatever the effect.
    """

    effect: str
    model: str  # the model to call (routed or as requested)
    mutations: Mapping[str, Any]  # merged `set` of every matching mutate policy (max_tokens: the minimum)
    matched: tuple[MatchedPolicy, ...]
    notify: tuple[MatchedPolicy, ...] = ()
    deny: MatchedPolicy | None = None
    route: MatchedPolicy | None = None
    #: matching policies with a hook-specific effect (require_approval, suspend, teardown,
    #: throttle), in bundle order; the caller of the hook acts on them
    actions: tuple[MatchedPolicy, ...] = ()

    @property
    def policy_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.matched)
