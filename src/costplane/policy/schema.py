"""Validation of bundle documents (Policy, Budget, PolicyTest) into the contract types.

Every check records an issue and carries on, so one run reports everything
that is wrong with a document. The `validate_*` functions return None when a
document has any issue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from costplane.attribution.context import Context, InvalidAttribute
from costplane.ledger.windows import WindowError, parse_duration
from costplane.policy.blueprintschema import validate_blueprint
from costplane.policy.budgetschema import validate_budget
from costplane.policy.celexpr import CompiledExpr
from costplane.policy.checks import DocChecker, check_expression, check_name, describe, did_you_mean
from costplane.policy.hookschema import SCHEMAS, check_value
from costplane.policy.sloschema import validate_slo
from costplane.policy.types import EFFECTS, HOOK_EFFECTS, HOOKS, PolicySpec, PolicyTestCase, ValidationIssue
from costplane.policy.yamlsource import Document, YMap, YNode, YScalar, to_plain

__all__ = [
    "KINDS",
    "MUTABLE_PARAMETERS",
    "POLICY_EFFECTS",
    "LoadedPolicy",
    "LoadedTest",
    "Reference",
    "validate_document",
    "validate_policy",
    "validate_test",
]

KINDS: tuple[str, ...] = ("Policy", "Budget", "PolicyTest", "Blueprint")
KINDS = (*KINDS, "SLO")  # economic SLOs (sloschema.py)
POLICY_KEYS = ("kind", "name", "description", "on", "when", "effect", "set", "priority", "reason")
TEST_KEYS = ("kind", "name", "description", "hook", "context", "request", "expect")
EXPECT_KEYS = ("effect", "model", "max_tokens", "policies", "notify", "reason_contains", "budgets")
POLICY_EFFECTS = EFFECTS
DECISION_EFFECTS = tuple(e for e in EFFECTS if e != "notify")
#: mutate `set` keys of an LLM request: name -> (kind, minimum, maximum) or (kind, choices)
MUTABLE_PARAMETERS: dict[str, tuple[str, Any, Any]] = {
    "max_tokens": ("int", 1, None),
    "n": ("int", 1, 128),
    "temperature": ("number", Decimal(0), Decimal(2)),
    "top_p": ("number", Decimal(0), Decimal(1)),
    "presence_penalty": ("number", Decimal(-2), Decimal(2)),
    "frequency_penalty": ("number", Decimal(-2), Decimal(2)),
    "reasoning_effort": ("choice", ("minimal", "low", "medium", "high"), None),
    # steers the gateway (opt into the exact-match response cache); never sent upstream
    "cache": ("bool", None, None),
}
#: mutate `set` keys of an environment launch or extension
ENVIRONMENT_PARAMETERS: dict[str, tuple[str, Any, Any]] = {
    "ttl": ("duration", None, None),  # shorten (never lengthen) the requested TTL
}
#: throttle `set` keys (slo.breach)
THROTTLE_PARAMETERS: dict[str, tuple[str, Any, Any]] = {
    "max_calls_per_minute": ("int", 1, None),
}
#: the `set` table of each (hook family, effect) that takes parameters
SET_PARAMETERS: dict[tuple[str, str], dict[str, tuple[str, Any, Any]]] = {
    ("llm", "mutate"): MUTABLE_PARAMETERS,
    ("environment", "mutate"): ENVIRONMENT_PARAMETERS,
    ("slo", "throttle"): THROTTLE_PARAMETERS,
}


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    spec: PolicySpec
    when: CompiledExpr
    name_line: int
    when_line: int = 0  # the line of `when` (the document's when omitted)


@dataclass(frozen=True, slots=True)
class Reference:
    """A name a test case refers to (checked against the bundle once all documents are read)."""

    line: int
    field: str
    kind: str  # Policy | Budget
    name: str


@dataclass(frozen=True, slots=True)
class LoadedTest:
    spec: PolicyTestCase
    name_line: int
    references: tuple[Reference, ...]
    #: (line, name) of numeric request fields the hook's schema does not declare: valid only as the
    #: idle metric of a blueprint of the bundle (environment.runtime; checked once all are read)
    metric_refs: tuple[tuple[int, str], ...] = ()


def _check_set(chk: DocChecker, node: YNode | None, effect: str | None, hook: str | None) -> dict[str, Any] | None:
    family = (hook or "llm.request").split(".")[0]
    table = SET_PARAMETERS.get((family, effect or ""))
    if effect not in ("route", "mutate", "throttle") or (effect != "route" and table is None):
        if node is not None:
            chk.issue(node.line, "set", f"effect {effect!r} takes no `set` at hook {hook!r}")
            return None
        return {}
    if effect == "route":
        setm = chk.mapping(node, "set", what="a mapping {model: NAME}")
        if node is None:
            chk.issue(chk.doc_line, "set.model", "effect 'route' requires set.model, the model to route to")
            return None
        if setm is None:
            return None
        chk.keys(setm, "set", ("model",), ("model",))
        model = chk.string(setm.get("model"), "set.model", what="a model name")
        return {"model": model} if model is not None and set(setm.entries) == {"model"} else None
    if table is not None:
        allowed = tuple(table)
        setm = chk.mapping(node, "set", what=f"a mapping of parameters ({', '.join(allowed)})")
        if node is None:
            chk.issue(chk.doc_line, "set", f"effect {effect!r} requires `set` with one of {', '.join(allowed)}")
            return None
        if setm is None:
            return None
        if not setm.entries:
            chk.issue(setm.line, "set", f"expected at least one of {', '.join(allowed)}")
            return None
        before = len(chk.issues)
        chk.keys(setm, "set", allowed)
        out: dict[str, Any] = {}
        for key, entry in setm.entries.items():
            spec = table.get(key)
            if spec is None:
                continue
            kind, low, high = spec
            field = f"set.{key}"
            if kind == "int":
                limit = f" and <= {high}" if high is not None else ""
                out[key] = chk.integer(
                    entry.node, field, minimum=low, maximum=high, what=f"an integer > 0{limit}"
                )
            elif kind == "number":
                exact = chk.decimal(
                    entry.node, field, minimum=low, maximum=high, what=f"a number {low}..{high}"
                )
                out[key] = None if exact is None else float(exact)
            elif kind == "bool":
                out[key] = chk.boolean(entry.node, field)
            elif kind == "duration":
                text = chk.string(entry.node, field, what="a duration such as 30m, 4h or 2d")
                try:
                    out[key] = parse_duration(text) if text is not None else None
                except WindowError as exc:
                    chk.issue(entry.node.line, field, str(exc))
            else:
                out[key] = chk.string(entry.node, field, choices=low)
        return out if len(chk.issues) == before else None
    return None


def validate_policy(chk: DocChecker, doc: YMap) -> LoadedPolicy | None:
    before = len(chk.issues)
    chk.keys(doc, "", POLICY_KEYS, ("name", "on", "effect"))
    name = check_name(chk, doc)
    hook = chk.string(doc.get("on"), "on", choices=HOOKS, noun="hook")
    effect = chk.string(doc.get("effect"), "effect", choices=POLICY_EFFECTS, noun="effect")
    if hook is not None and effect is not None and effect not in HOOK_EFFECTS[hook]:
        line = doc.get("effect").line  # type: ignore[union-attr]  # effect parsed, so the node exists
        chk.issue(line, "effect", f"effect {effect!r} is not available at hook {hook!r}; expected one of "
                                  f"{', '.join(HOOK_EFFECTS[hook])}")
    when = check_expression(chk, doc.get("when"), "when")
    settings = _check_set(chk, doc.get("set"), effect, hook)
    priority = chk.integer(doc.get("priority"), "priority", what="an integer priority")
    reason = chk.string(doc.get("reason"), "reason", what="a reason text", allow_empty=True)
    description = chk.string(doc.get("description"), "description", allow_empty=True)
    del description
    if len(chk.issues) != before or name is None or hook is None or effect is None or when is None:
        return None
    spec = PolicySpec(
        name=name,
        hook=hook,
        when=when.source,
        effect=effect,
        set=settings or {},
        reason=reason or "",
        priority=priority or 0,
        location=chk.location(doc.line),
    )
    name_node, when_node = doc.get("name"), doc.get("when")
    return LoadedPolicy(spec, when, name_node.line if name_node else doc.line,
                        when_node.line if when_node is not None else doc.line)


def _check_request(
    chk: DocChecker, node: YNode | None, hook: str | None, metrics: list[tuple[int, str]]
) -> dict[str, Any] | None:
    """The test's request, each field checked against the hook's schema (name and CEL type)."""
    req = chk.mapping(node, "request", what="a mapping of request fields (model, input_tokens, ...)")
    if node is None:
        return {}
    if req is None:
        return None
    schema = SCHEMAS.get(hook or "")
    before = len(chk.issues)
    plain = to_plain(req)
    for key, entry in req.entries.items():
        field = f"request.{key}"
        value = plain[key]
        if schema is None:  # an unknown hook (reported): check the types of the fields some hook declares
            declared = next((s.field(key) for s in SCHEMAS.values() if s.field(key) is not None), None)
            if declared is not None and value is not None and check_value(declared, value) is not None:
                chk.issue(entry.node.line, field, f"{check_value(declared, value)} ({declared.cel_type}), "
                                                  f"got {describe(entry.node)}")
            continue
        declared = schema.field(key)
        if declared is None:
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if schema.blueprint_metrics and numeric:
                metrics.append((entry.key_line, key))
                continue
            chk.issue(entry.key_line, field, f"unknown request field {key!r} at hook {schema.hook!r}"
                                             f"{did_you_mean(key, schema.names)} (allowed: {', '.join(schema.names)})")
            continue
        if value is None:
            continue  # None counts as not sent
        problem = check_value(declared, value)
        if problem is not None:
            chk.issue(entry.node.line, field, f"{problem} ({declared.cel_type}), got {describe(entry.node)}")
    return plain if len(chk.issues) == before else None


def _check_expect(chk: DocChecker, node: YNode | None, refs: list[Reference]) -> dict[str, Any] | None:
    exp = chk.mapping(node, "expect", what=f"a mapping with any of {', '.join(EXPECT_KEYS)}")
    if exp is None:
        return None
    before = len(chk.issues)
    chk.keys(exp, "expect", EXPECT_KEYS)
    if not exp.entries:
        chk.issue(exp.line, "expect", f"expected at least one of {', '.join(EXPECT_KEYS)}")
    out: dict[str, Any] = {}
    effect_node = exp.get("effect")
    if isinstance(effect_node, YScalar) and effect_node.value == "notify":
        chk.issue(
            effect_node.line,
            "expect.effect",
            "notify is never a decision's effect; use expect.notify: [names]",
        )
    else:
        out["effect"] = chk.string(effect_node, "expect.effect", choices=DECISION_EFFECTS)
    out["model"] = chk.string(exp.get("model"), "expect.model", what="a model name")
    out["max_tokens"] = chk.integer(
        exp.get("max_tokens"), "expect.max_tokens", minimum=0, what="an integer >= 0"
    )
    out["reason_contains"] = chk.string(exp.get("reason_contains"), "expect.reason_contains")
    for key, kind in (("policies", "Policy"), ("notify", "Policy"), ("budgets", "Budget")):
        field = f"expect.{key}"
        names = chk.string_list(exp.get(key), field, what=f"a list of {kind.lower()} names")
        out[key] = names
        seq = exp.get(key)
        if names is not None and seq is not None:
            refs.extend(Reference(seq.line, field, kind, name) for name in names)
    return (
        {k: v for k, v in out.items() if v is not None and k in exp.entries}
        if len(chk.issues) == before
        else None
    )


def validate_test(chk: DocChecker, doc: YMap) -> LoadedTest | None:
    before = len(chk.issues)
    chk.keys(doc, "", TEST_KEYS, ("name", "expect"))
    name = check_name(chk, doc, free_text=True)
    hook_node = doc.get("hook")
    hook = chk.string(hook_node, "hook", choices=HOOKS, noun="hook") if hook_node is not None else HOOKS[0]
    chk.string(doc.get("description"), "description", allow_empty=True)
    context: Mapping[str, Any] = {}
    ctx_node = chk.mapping(doc.get("context"), "context", what="a mapping of dimension to value")
    if ctx_node is not None:
        plain = to_plain(ctx_node)
        try:
            Context.from_mapping(plain, source="context")
            context = plain
        except InvalidAttribute as exc:
            line = ctx_node.line
            leaf = exc.source.split(".")[-1]
            entry = ctx_node.entries.get(leaf)
            if entry is not None:
                line = entry.node.line
            chk.issue(line, exc.source, f"invalid value {exc.value!r}; expected {exc.expected}")
    metrics: list[tuple[int, str]] = []
    request = _check_request(chk, doc.get("request"), hook, metrics)
    refs: list[Reference] = []
    expect = _check_expect(chk, doc.get("expect"), refs)
    if len(chk.issues) != before or name is None or hook is None or request is None or expect is None:
        return None
    spec = PolicyTestCase(name, hook, context, request, expect, chk.location(doc.line))
    name_node = doc.get("name")
    return LoadedTest(spec, name_node.line if name_node else doc.line, tuple(refs), tuple(metrics))


def validate_document(doc: Document, issues: list[ValidationIssue]) -> tuple[str, Any] | None:
    """Validate one document; returns (kind, LoadedPolicy | LoadedBudget | LoadedTest) or None."""
    chk = DocChecker(doc.file, issues, doc.line)
    root = doc.root
    if not isinstance(root, YMap):
        chk.issue(doc.line, "(document)", f"expected a mapping with a `kind`, got {describe(root)}")
        return None
    kind = chk.string(root.get("kind"), "kind", choices=KINDS, noun="kind")
    if root.get("kind") is None:
        chk.issue(doc.line, "kind", f"required key 'kind' is missing; expected one of {', '.join(KINDS)}")
    if kind == "Policy":
        loaded: Any = validate_policy(chk, root)
    elif kind == "Budget":
        loaded = validate_budget(chk, root)
    elif kind == "PolicyTest":
        loaded = validate_test(chk, root)
    elif kind == "Blueprint":
        loaded = validate_blueprint(chk, root)
    elif kind == "SLO":
        loaded = validate_slo(chk, root)
    else:
        return None
    return None if loaded is None else (kind, loaded)
