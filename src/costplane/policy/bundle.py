"""A loaded, validated bundle: policies, budgets and test cases with compiled CEL.

`load_bundle(path)` reads every `*.yaml`/`*.yml` file under `path` (recursively,
sorted by relative path; hidden files and directories skipped), validates every
document and raises `BundleError` carrying *every* issue found. Given a
`BundleSnapshot`, it parses those bytes instead of reading the files again. A
`Bundle` is immutable; reloading means loading again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from costplane.policy.blueprintschema import BlueprintSpec
from costplane.policy.budgetschema import LoadedBudget
from costplane.policy.celexpr import CompiledExpr, compile_expr
from costplane.policy.hookschema import unknown_fields
from costplane.policy.revision import BundleSnapshot, bundle_revision, read_snapshot
from costplane.policy.schema import KINDS, LoadedPolicy, LoadedTest, validate_document
from costplane.policy.sloschema import LoadedSlo, SloSpec
from costplane.policy.types import (
    HOOK_EFFECTS,
    HOOKS,
    BudgetSpec,
    BundleError,
    PolicySpec,
    PolicyTestCase,
    SourceLocation,
    ValidationIssue,
)
from costplane.policy.yamlsource import Document, YMap, YScalar, parse_documents

__all__ = ["Bundle", "load_bundle"]


@dataclass(frozen=True, slots=True)
class Bundle:
    """Everything a bundle declares, in bundle order (file order, then document order)."""

    root: Path
    revision: str
    policies: tuple[PolicySpec, ...]
    budgets: tuple[BudgetSpec, ...]
    tests: tuple[PolicyTestCase, ...]
    files: tuple[str, ...] = ()
    #: compiled `when` of every policy, by policy name
    when: Mapping[str, CompiledExpr] = field(default_factory=dict)
    #: compiled `scope` of every budget, by budget name
    scopes: Mapping[str, CompiledExpr] = field(default_factory=dict)
    #: `sha256:<hex>` of the bundle files, whatever the revision says: a dirty git tree keeps
    #: the revision `git:<sha>+dirty` across edits, the digest changes with every edit
    digest: str = ""
    #: governed environment templates (kind: Blueprint), in bundle order
    blueprints: tuple[BlueprintSpec, ...] = ()
    #: economic SLOs (kind: SLO), in bundle order
    slos: tuple[SloSpec, ...] = ()

    def blueprint(self, name: str) -> BlueprintSpec | None:
        return next((b for b in self.blueprints if b.name == name), None)

    def policy(self, name: str) -> PolicySpec | None:
        return next((p for p in self.policies if p.name == name), None)

    def budget(self, name: str) -> BudgetSpec | None:
        return next((b for b in self.budgets if b.name == name), None)

    def counts(self) -> dict[str, dict[str, int]]:
        """{hook: {"policies": n, "tests": n}}; budgets apply to every hook."""
        out: dict[str, dict[str, int]] = {}
        for hook in HOOKS:
            out[hook] = {
                "policies": sum(1 for p in self.policies if p.hook == hook),
                "tests": sum(1 for t in self.tests if t.hook == hook),
            }
        return out

    @classmethod
    def from_specs(
        cls,
        policies: Iterable[PolicySpec] = (),
        budgets: Iterable[BudgetSpec] = (),
        tests: Iterable[PolicyTestCase] = (),
        *,
        root: Path | str = "<memory>",
        revision: str = "memory",
    ) -> Bundle:
        """Build a bundle from specs made in code (tests, the SDK); compiles every CEL expression."""
        policies, budgets, tests = tuple(policies), tuple(budgets), tuple(tests)
        issues: list[ValidationIssue] = []
        when = _compile_all(((p.name, p.when, p.location, "when") for p in policies), issues)
        scopes = _compile_all(((b.name, b.scope, b.location, "scope") for b in budgets), issues)
        fields: list[tuple[str | None, CompiledExpr, SourceLocation, str]] = [
            (p.hook, when[p.name], p.location, "when") for p in policies if p.name in when and p.hook in HOOKS
        ]
        fields += [(None, scopes[b.name], b.location, "scope") for b in budgets if b.name in scopes]
        _check_fields(fields, (), issues)
        for kind, names in (("Policy", [p.name for p in policies]), ("Budget", [b.name for b in budgets])):
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    issues.append(
                        ValidationIssue(SourceLocation("<memory>", 0), "name", f"duplicate {kind} {name!r}")
                    )
                seen.add(name)
        for policy in policies:
            if policy.hook not in HOOKS:
                issues.append(ValidationIssue(policy.location, "on", f"unknown hook {policy.hook!r}"))
            if policy.effect not in HOOK_EFFECTS.get(policy.hook, ()):
                issues.append(ValidationIssue(policy.location, "effect",
                                              f"effect {policy.effect!r} is not available at hook {policy.hook!r}"))
            if policy.effect == "route" and not isinstance(policy.set.get("model"), str):
                issues.append(ValidationIssue(policy.location, "set.model", "a route needs set.model"))
        if issues:
            raise BundleError(issues)
        return cls(Path(root), revision, policies, budgets, tests, (), when, scopes)


def _compile_all(
    items: Iterable[tuple[str, str, SourceLocation, str]], issues: list[ValidationIssue]
) -> Mapping[str, CompiledExpr]:
    out: dict[str, CompiledExpr] = {}
    for name, source, location, field_name in items:
        compiled, problems = compile_expr(source)
        issues.extend(ValidationIssue(location, field_name, problem) for problem in problems)
        if compiled is not None:
            out[name] = compiled
    return MappingProxyType(out)


def _check_fields(
    items: Iterable[tuple[str | None, CompiledExpr, SourceLocation, str]],
    metrics: Iterable[str],
    issues: list[ValidationIssue],
) -> None:
    """Every `request.<field>` a `when` (hook given) or budget `scope` (hook None) names must be
    declared by the hook's schema (costplane.policy.hookschema); `metrics`: the blueprints' idle metrics."""
    names = tuple(metrics)
    for hook, expr, location, field_name in items:
        for _, problem in unknown_fields(hook, expr.request_refs, names):
            issues.append(ValidationIssue(location, field_name, problem))


def _declared_name(doc: Document) -> tuple[str, str, SourceLocation] | None:
    """(kind, name, location of the name) of a document, whether or not it is otherwise valid."""
    if not isinstance(doc.root, YMap):
        return None
    kind, name = doc.root.get("kind"), doc.root.get("name")
    if not isinstance(kind, YScalar) or not isinstance(name, YScalar):
        return None
    if not isinstance(kind.value, str) or not isinstance(name.value, str) or kind.value not in KINDS:
        return None
    return kind.value, name.value, SourceLocation(doc.file, name.line)


def _check_duplicates(declared: list[tuple[str, str, SourceLocation]], issues: list[ValidationIssue]) -> None:
    """A name used twice within one kind: an issue at every later use, naming the first."""
    first: dict[tuple[str, str], SourceLocation] = {}
    for kind, name, where in declared:
        earlier = first.setdefault((kind, name), where)
        if earlier is not where:
            message = f"duplicate {kind} name {name!r}; also defined at {earlier}"
            issues.append(ValidationIssue(where, "name", message))


def load_bundle(path: Path | str, snapshot: BundleSnapshot | None = None) -> Bundle:
    """Load and validate the bundle under `path` (from `snapshot`'s bytes when given, which must have
    been read from `path`); raise BundleError with every issue."""
    root = Path(path)
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise BundleError(
            [ValidationIssue(SourceLocation(str(root), 0), "(bundle)", f"bundle directory {what}")]
        )
    if snapshot is None:
        snapshot = read_snapshot(root)
    issues: list[ValidationIssue] = [
        ValidationIssue(SourceLocation(str(root / relative), 1), "(file)", f"cannot read file: {why}")
        for relative, why in snapshot.unreadable.items()
    ]
    policies: list[LoadedPolicy] = []
    budgets: list[LoadedBudget] = []
    tests: list[LoadedTest] = []
    blueprints: list[BlueprintSpec] = []
    slos: list[LoadedSlo] = []
    declared: list[tuple[str, str, SourceLocation]] = []
    for relative, data in sorted(snapshot.files.items()):
        documents, problems = parse_documents(data, str(root / relative))
        issues.extend(problems)
        for doc in documents:
            name = _declared_name(doc)
            if name is not None:
                declared.append(name)
            loaded: tuple[str, Any] | None = validate_document(doc, issues)
            if loaded is None:
                continue
            kind, item = loaded
            if kind == "Policy":
                policies.append(item)
            elif kind == "Budget":
                budgets.append(item)
            elif kind == "Blueprint":
                blueprints.append(item)
            elif kind == "SLO":
                slos.append(item)
            else:
                tests.append(item)
    _check_duplicates(declared, issues)
    metrics = sorted({b.lifecycle.idle.metric for b in blueprints if b.lifecycle.idle is not None})
    _check_fields(
        [(p.spec.hook, p.when, SourceLocation(p.spec.location.file, p.when_line), "when") for p in policies]
        + [(None, b.scope, SourceLocation(b.spec.location.file, b.scope_line), "scope") for b in budgets],
        metrics,
        issues,
    )
    for test in tests:
        for line, metric in test.metric_refs:
            if metric not in metrics:
                listed = ", ".join(metrics) or "none"
                issues.append(ValidationIssue(
                    SourceLocation(test.spec.location.file, line), f"request.{metric}",
                    f"unknown request field {metric!r} at hook {test.spec.hook!r}: neither declared by the hook "
                    f"nor the idle metric of a blueprint of the bundle (blueprint metrics: {listed})"))
    known = {"Policy": {p.spec.name for p in policies}, "Budget": {b.spec.name for b in budgets}}
    for test in tests:
        for ref in test.references:
            if ref.name not in known[ref.kind]:
                issues.append(
                    ValidationIssue(
                        SourceLocation(test.spec.location.file, ref.line),
                        ref.field,
                        f"no {ref.kind} named {ref.name!r} in the bundle",
                    )
                )
    if issues:
        issues.sort(key=lambda i: (i.location.file, i.location.line))
        raise BundleError(issues)
    return Bundle(
        root=root,
        revision=bundle_revision(root, snapshot),
        policies=tuple(p.spec for p in policies),
        budgets=tuple(b.spec for b in budgets),
        tests=tuple(t.spec for t in tests),
        files=tuple(sorted(snapshot.files)),
        when=MappingProxyType({p.spec.name: p.when for p in policies}),
        scopes=MappingProxyType({b.spec.name: b.scope for b in budgets}),
        digest=snapshot.digest,
        blueprints=tuple(blueprints),
        slos=tuple(s.spec for s in slos),
    )
