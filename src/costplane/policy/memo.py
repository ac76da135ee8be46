"""A policy engine that memoises what each expression returned, for policy replay.

A replay decides millions of recorded requests under one bundle. Most of a decision's time goes into
building its `cel.Context` (converting `ctx` and `request` into CEL values), yet the requests share
a handful of contexts and models, and each expression reads only two or three fields. A compiled
expression is a pure function of the fields it reads (no CEL function of a bundle depends on the
clock or anything else, and the engine hands it exactly those values), so `MemoEngine` remembers each
expression's result by the values of its fields — typed, so that 1, 1.0 and true stay apart — and
builds the `cel.Context` only when some expression meets values it has not seen. The decision is then
made from those results by the engine's own `outcome`, so it is the decision `PolicyEngine.decide`
makes (tested on random requests).

Expressions are evaluated normally (not memoised) when they read `ctx` or `request` as a whole or
call a method on it (`request.exists(…)`, which sees every converted field), and a decision is made
normally when a field it reads holds a list or a map. The decision is remembered too, by every
expression's result (all booleans) and the request's `model` and `max_tokens` (all `outcome` reads of
it): requests with the same ones share one `PolicyDecision`, so callers must not change its
`mutations`. Each memo is cleared past `MAX_ENTRIES`. Not thread-safe: one engine per replay (the
gateway uses `PolicyEngine`).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Mapping
from operator import itemgetter
from typing import Any

from costplane.attribution.context import Context
from costplane.policy.bundle import Bundle
from costplane.policy.celexpr import CTX_FIELDS, CompiledExpr
from costplane.policy.engine import PolicyEngine, cel_value, execute, outcome
from costplane.policy.engine import activation as cel_activation
from costplane.policy.types import BudgetSpec, PolicyDecision

__all__ = ["MAX_ENTRIES", "MemoEngine"]

MAX_ENTRIES = 50_000  # results remembered per expression (and decisions per hook)
_CONTEXTS = 10_000
_ABSENT = object()  # a request field the activation leaves out (no value, no default)
_MISS = object()
_STRING = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'')
_METHOD = re.compile(r"\b(?:ctx|request)\s*\.\s*\w+\s*\(")  # `request.exists(…)` reads the whole map
_UNHASHABLE = (list, dict)
_BOOL = frozenset({bool})


class _Unhashable(Exception):
    """A field value (list, dict) cannot key the memo: that request is decided by `PolicyEngine`."""


def _typed(value: Any) -> Any:
    """A hashable key for a CEL value that keeps apart what CEL keeps apart (1, 1.0, true; 0.0, -0.0):
    a str or an int as itself (they never equal each other), anything else with its type."""
    kind = type(value)
    if kind is str or kind is int:
        return value
    if kind is float:
        return kind, struct.pack("<d", value)
    if isinstance(value, _UNHASHABLE):
        raise _Unhashable
    return kind, value


class _Program:
    """One expression (a policy's `when` or a budget's `scope`), the fields it reads and its memo."""

    __slots__ = ("ctx_fields", "key", "memo", "program", "request_fields")

    def __init__(self, expr: CompiledExpr, key: Callable[[tuple[Any, ...]], Any] | None) -> None:
        self.program, self.key = expr.program, key
        self.ctx_fields, self.request_fields = expr.ctx_fields, expr.request_fields
        self.memo: dict[Any, object] = {}


class _Hook:
    """The fields the memoised expressions of a hook read, in one vector, and each expression's getter."""

    def __init__(self, exprs: list[CompiledExpr], defaults: Mapping[str, Any]) -> None:
        self.defaults = defaults  # what unset request fields read as at this hook
        memoisable = [e for e in exprs if _memoisable(e)]
        ctx: set[str] = set()
        request: set[str] = set()
        for expr in memoisable:
            ctx |= set(CTX_FIELDS) if expr.ctx_fields is None else expr.ctx_fields
            request |= expr.request_fields or frozenset()
        self.ctx_names = tuple(sorted(ctx))
        self.request_names = tuple(sorted(request))
        slots = {("ctx", n): i for i, n in enumerate(self.ctx_names)}
        slots |= {("request", n): len(self.ctx_names) + i for i, n in enumerate(self.request_names)}
        self.programs: list[_Program] = []
        for expr in exprs:
            if not _memoisable(expr):
                self.programs.append(_Program(expr, None))
                continue
            fields = [("ctx", n) for n in sorted(CTX_FIELDS if expr.ctx_fields is None else expr.ctx_fields)]
            fields += [("request", n) for n in sorted(expr.request_fields or ())]
            indices = [slots[f] for f in fields]
            getter: Callable[[tuple[Any, ...]], Any] = itemgetter(*indices) if indices else _no_fields
            self.programs.append(_Program(expr, getter))
        # the ctx part of the vector by context object: requests share a few decoded contexts
        self._contexts: dict[int, tuple[Context, tuple[Any, ...]]] = {}
        self.decisions: dict[Any, tuple[PolicyDecision, tuple[BudgetSpec, ...]]] = {}

    def vector(self, ctx: Context, request: Mapping[str, Any]) -> tuple[Any, ...]:
        """The typed values the engine would convert for these fields (`_cel_ctx`, `cel_request`)."""
        seen = self._contexts.get(id(ctx))
        if seen is not None and seen[0] is ctx:
            part = seen[1]
        else:
            part = self._ctx_part(ctx)
            if len(self._contexts) >= _CONTEXTS:
                self._contexts.clear()
            self._contexts[id(ctx)] = (ctx, part)  # holding ctx keeps its id from being reused
        out: list[Any] = []
        for name in self.request_names:
            value = request.get(name)
            kind = type(value)
            if kind is str or kind is int:  # the usual kinds first: converted as they are
                out.append(value)
            elif value is None:
                default = self.defaults.get(name, _ABSENT)
                out.append(default if default is _ABSENT else _typed(default))
            else:
                out.append(_typed(cel_value(value)))
        return part + tuple(out)

    def _ctx_part(self, ctx: Context) -> tuple[Any, ...]:
        out: list[Any] = []
        for name in self.ctx_names:
            if name == "tags":
                out.append(tuple((k, _typed(v)) for k, v in ctx.tags.items()))
            elif name == "key":
                out.append(_typed(ctx.key_id or ""))
            else:
                out.append(_typed(getattr(ctx, name) or ""))
        return tuple(out)


def _no_fields(_: tuple[Any, ...]) -> tuple[()]:
    return ()


def _memoisable(expr: CompiledExpr) -> bool:
    return expr.request_fields is not None and not _METHOD.search(_STRING.sub('""', expr.source))


class MemoEngine(PolicyEngine):
    """`PolicyEngine.decide` with each expression's results memoised (see the module docstring)."""

    def __init__(self, bundle: Bundle) -> None:
        super().__init__(bundle)
        scopes = [bundle.scopes[b.name] for b in bundle.budgets]
        self._hooks = {hook: _Hook([bundle.when[r.spec.name] for r in rules] + scopes, self.defaults[hook])
                       for hook, rules in self._rules.items()}

    def decide(
        self, hook: str, ctx: Context, request: Mapping[str, Any]
    ) -> tuple[PolicyDecision, list[BudgetSpec]]:
        plan = self._hooks.get(hook)
        if plan is None:
            return super().decide(hook, ctx, request)  # an unknown hook: its error
        try:
            vector = plan.vector(ctx, request)
        except _Unhashable:
            return super().decide(hook, ctx, request)
        results: list[object] = []
        missed: list[tuple[int, Any]] = []  # (index, memo key)
        for index, item in enumerate(plan.programs):
            key = None if item.key is None else item.key(vector)
            result = _MISS if key is None else item.memo.get(key, _MISS)
            if result is _MISS:
                missed.append((index, key))
            results.append(result)
        if missed:
            self._evaluate(hook, plan, missed, results, ctx, request)
        # the decision itself, by what every expression returned and the two request fields it reads,
        # when every result is a bool (an error or another value: made afresh, it names the failure)
        key = None
        if _BOOL.issuperset(map(type, results)):
            model, asked = request.get("model"), request.get("max_tokens")
            key = (tuple(results), (type(model), model) if isinstance(model, str) else None,
                   (type(asked), asked) if isinstance(asked, int) and not isinstance(asked, bool) else None)
            made = plan.decisions.get(key)
            if made is not None:
                return made[0], list(made[1])
        rules = self._rules[hook]
        count = len(rules)
        budgets = [spec for (spec, _), result in zip(self._budgets, results[count:], strict=True)
                   if result is not False]  # errors and non-bools: the budget applies
        decision = outcome([(r, v) for r, v in zip(rules, results, strict=False) if v is not False], request)
        if key is not None:
            if len(plan.decisions) >= MAX_ENTRIES:
                plan.decisions.clear()
            plan.decisions[key] = (decision, tuple(budgets))
        return decision, budgets

    def _evaluate(self, hook: str, plan: _Hook, missed: list[tuple[int, Any]], results: list[object], ctx: Context,
                  request: Mapping[str, Any]) -> None:
        """Run the programs that missed their memo against one cel.Context holding only the fields they
        read (the hook's usual one when one of them is not memoised), and remember what they return."""
        programs = [plan.programs[i] for i, _ in missed]
        if any(p.key is None for p in programs):
            activation = self.activation(hook, ctx, request)
        else:
            ctx_fields: frozenset[str] | None = frozenset()
            request_fields: frozenset[str] = frozenset()
            for p in programs:
                ctx_fields = None if ctx_fields is None or p.ctx_fields is None else ctx_fields | p.ctx_fields
                request_fields |= p.request_fields or frozenset()
            activation = cel_activation(ctx, request, ctx_fields, request_fields, plan.defaults)
        for (index, key), item in zip(missed, programs, strict=True):
            result = results[index] = execute(item.program, activation)
            if key is not None:
                if len(item.memo) >= MAX_ENTRIES:
                    item.memo.clear()
                item.memo[key] = result
