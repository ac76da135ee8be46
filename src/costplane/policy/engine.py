"""The policy engine: one decision per request, from the compiled bundle.

Per decision the engine builds ONE `cel.Context` holding `ctx` and `request`
and runs every compiled program of the hook (and every budget scope) against
it. Converting Python values into CEL values is what costs time, so only the
fields of `ctx` and `request` that some expression of the bundle reads are
converted (an expression that uses `ctx` or `request` as a whole gets all of
it); what an expression can observe is exactly the same.

Unset request fields read as the hook's defaults (`hookschema.request_defaults`: the hook's schema,
plus the budget-scope fields it does not declare). Precedence, fail-closed rules and request fields
are described in docs/policy.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import cel

from costplane.attribution.context import DIMENSIONS, Context
from costplane.policy.bundle import Bundle
from costplane.policy.celexpr import CTX_FIELDS, REQUEST_DEFAULTS, CompiledExpr
from costplane.policy.hookschema import request_defaults
from costplane.policy.types import EFFECTS, HOOKS, BudgetSpec, MatchedPolicy, PolicyDecision, PolicySpec

__all__ = ["ACTION_EFFECTS", "PolicyEngine", "Rule", "activation", "cel_request", "cel_value", "execute", "outcome"]

_DIMENSIONS = frozenset(DIMENSIONS)


@dataclass(frozen=True, slots=True)
class Rule:
    """A policy of the bundle with its compiled `when`."""

    spec: PolicySpec
    program: cel.Program
    match: MatchedPolicy


def _union(fields: Iterable[frozenset[str] | None]) -> frozenset[str] | None:
    out: set[str] = set()
    for item in fields:
        if item is None:
            return None
        out |= item
    return frozenset(out)


def cel_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, tuple):
        return list(value)
    if value is None or isinstance(value, str | int | float | bool | list | dict | bytes):
        return value
    return str(value)


def cel_request(
    request: Mapping[str, Any], fields: frozenset[str] | None = None, defaults: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The `request` variable: fields with a default always present (the default for None), None
    values dropped. `defaults`: the hook's (`hookschema.request_defaults`; llm.request's if None).

    With `fields`, only those fields are converted (see the module docstring).
    """
    if defaults is None:
        defaults = REQUEST_DEFAULTS
    out: dict[str, Any] = {}
    if fields is None:
        names: Iterable[str] = {**defaults, **request}.keys()
    else:
        names = fields
    for name in names:
        value = request.get(name)
        if value is None:
            if name in defaults:
                out[name] = defaults[name]
            continue
        out[name] = cel_value(value)
    return out


def activation(ctx: Context, request: Mapping[str, Any], ctx_fields: frozenset[str] | None,
               request_fields: frozenset[str] | None, defaults: Mapping[str, Any] | None = None) -> cel.Context:
    """A cel.Context with these fields of `ctx` and `request` (None: all of it)."""
    return cel.Context({"ctx": _cel_ctx(ctx, ctx_fields), "request": cel_request(request, request_fields, defaults)})


def _cel_ctx(ctx: Context, fields: frozenset[str] | None) -> dict[str, Any]:
    if fields is None:
        return ctx.as_cel()
    out: dict[str, Any] = {}
    for name in fields:
        if name in _DIMENSIONS:
            out[name] = getattr(ctx, name) or ""
        elif name == "tags":
            out[name] = dict(ctx.tags)
        elif name == "key":
            out[name] = ctx.key_id or ""
    return out


#: effects the engine reports for the hook's caller to carry out
ACTION_EFFECTS = frozenset({"require_approval", "teardown", "suspend", "throttle"})


class PolicyEngine:
    """Evaluates a bundle's policies and budget scopes. Immutable; safe to share between threads."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        rules: dict[str, list[Rule]] = {hook: [] for hook in HOOKS}
        for spec in bundle.policies:
            compiled = bundle.when[spec.name]
            match = MatchedPolicy(spec.name, spec.effect, spec.reason, spec.priority)
            rules.setdefault(spec.hook, []).append(Rule(spec, compiled.program, match))
        self._rules = {hook: tuple(items) for hook, items in rules.items()}
        self._budgets = tuple((b, bundle.scopes[b.name].program) for b in bundle.budgets)
        self._scope_executes = tuple(program.execute for _, program in self._budgets)
        self._fields: dict[str, tuple[frozenset[str] | None, frozenset[str] | None]] = {}
        scopes: list[CompiledExpr] = [bundle.scopes[b.name] for b in bundle.budgets]
        scope_fields = sorted({name for expr in scopes for name in expr.request_refs})
        #: per hook: what unset request fields read as (its schema, and the budget-scope fields it lacks)
        self.defaults: dict[str, dict[str, Any]] = {hook: request_defaults(hook, scope_fields) for hook in HOOKS}
        for hook, items in self._rules.items():
            exprs = [bundle.when[r.spec.name] for r in items] + scopes
            ctx_fields = _union(e.ctx_fields for e in exprs)
            if ctx_fields is not None:
                ctx_fields = ctx_fields & frozenset(CTX_FIELDS)
            self._fields[hook] = (ctx_fields, _union(e.request_fields for e in exprs))

    @property
    def revision(self) -> str:
        return self.bundle.revision

    def activation(self, hook: str, ctx: Context, request: Mapping[str, Any]) -> cel.Context:
        """The one cel.Context a decision evaluates every program against."""
        ctx_fields, request_fields = self._fields[hook]
        return cel.Context({"ctx": _cel_ctx(ctx, ctx_fields),
                            "request": cel_request(request, request_fields, self.defaults[hook])})

    def decide(
        self, hook: str, ctx: Context, request: Mapping[str, Any]
    ) -> tuple[PolicyDecision, list[BudgetSpec]]:
        """The policy decision for one request and the budgets whose scope matches it."""
        rules = self._rules.get(hook)
        if rules is None:
            raise ValueError(f"unknown hook {hook!r}; expected one of {', '.join(HOOKS)}")
        activation = self.activation(hook, ctx, request)
        picked: list[tuple[Rule, object]] = []  # the rules whose `when` did not return False
        for rule in rules:
            try:
                result = rule.program.execute(activation)
            except Exception as exc:  # any CEL run-time error fails closed
                result = exc
            if result is not False:
                picked.append((rule, result))
        try:
            scopes: list[object] = [run(activation) for run in self._scope_executes]
        except Exception:  # an error: the budget applies
            scopes = [execute(program, activation) for _, program in self._budgets]
        budgets = [spec for (spec, _), applies in zip(self._budgets, scopes, strict=False) if applies is not False]
        return outcome(picked, request), budgets

    def evaluate(self, hook: str, ctx: Context, request: Mapping[str, Any]) -> PolicyDecision:
        """The policy decision alone."""
        return self.decide(hook, ctx, request)[0]

    def budgets_for(self, hook: str, ctx: Context, request: Mapping[str, Any]) -> list[BudgetSpec]:
        """The budgets whose scope matches, without evaluating policies."""
        if hook not in self._fields:
            raise ValueError(f"unknown hook {hook!r}; expected one of {', '.join(HOOKS)}")
        activation = self.activation(hook, ctx, request)
        return [spec for spec, program in self._budgets if execute(program, activation) is not False]


def outcome(picked: Iterable[tuple[Rule, object]], request: Mapping[str, Any]) -> PolicyDecision:
    """The decision from the rules whose `when` did not return False, in bundle order, with what it
    returned (True, another value or the exception it raised): precedence and fail-closed rules
    (docs/policy.md)."""
    matched: list[MatchedPolicy] = []
    notify: list[MatchedPolicy] = []
    deny: MatchedPolicy | None = None
    route: Rule | None = None
    mutations: dict[str, Any] = {}
    mutation_priority: dict[str, int] = {}
    actions: list[MatchedPolicy] = []
    for rule, result in picked:
        if result is not True:
            failure = _failure(rule.spec, result)
            matched.append(failure)
            deny = deny or failure
            continue
        matched.append(rule.match)
        effect = rule.spec.effect
        if effect == "deny":
            deny = deny or rule.match
        elif effect == "route":
            if route is None or rule.spec.priority > route.spec.priority:
                route = rule
        elif effect == "mutate":
            _merge(mutations, mutation_priority, rule.spec)
        elif effect == "notify":
            notify.append(rule.match)
        elif effect in ACTION_EFFECTS:
            actions.append(rule.match)
    return _decision(request, matched, notify, deny, route, mutations, actions)


def _failure(spec: PolicySpec, result: object) -> MatchedPolicy:
    if isinstance(result, Exception):
        problem = f"CEL error: {type(result).__name__}: {result}"
    else:
        problem = f"`when` returned {type(result).__name__} {result!r}, not a boolean"
    reason = f"policy {spec.name!r} could not be evaluated, failing closed ({problem})"
    return MatchedPolicy(spec.name, "deny", reason, spec.priority)


def _merge(mutations: dict[str, Any], priorities: dict[str, int], spec: PolicySpec) -> None:
    for key, value in spec.set.items():
        if key == "max_tokens":
            current = mutations.get(key)
            mutations[key] = value if current is None else min(current, value)
        elif key not in priorities or spec.priority > priorities[key]:
            mutations[key] = value
            priorities[key] = spec.priority


def execute(program: cel.Program, activation: cel.Context) -> object:
    """What the program returns, or the exception it raises."""
    try:
        return program.execute(activation)
    except Exception as exc:
        return exc


def _decision(
    request: Mapping[str, Any],
    matched: list[MatchedPolicy],
    notify: list[MatchedPolicy],
    deny: MatchedPolicy | None,
    route: Rule | None,
    mutations: dict[str, Any],
    actions: list[MatchedPolicy],
) -> PolicyDecision:
    requested = request.get("model")
    model = requested if isinstance(requested, str) else ""
    if deny is not None:
        return PolicyDecision("deny", model, {}, tuple(matched), tuple(notify), deny=deny, actions=tuple(actions))
    if "max_tokens" in mutations:
        asked = request.get("max_tokens")
        if isinstance(asked, int) and not isinstance(asked, bool) and 0 < asked < mutations["max_tokens"]:
            mutations["max_tokens"] = asked  # a cap never raises what the client asked for
    if route is not None:
        model = str(route.spec.set["model"])
        effect = "route"
    else:
        effect = "mutate" if mutations else "allow"
    if actions:
        effect = min((a.effect for a in actions), key=EFFECTS.index)
    return PolicyDecision(
        effect,
        model,
        mutations,
        tuple(matched),
        tuple(notify),
        route=route.match if route is not None else None,
        actions=tuple(actions),
    )
