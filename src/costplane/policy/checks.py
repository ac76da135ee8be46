"""Typed readers over located YAML nodes that collect issues instead of raising.

A `DocChecker` reads one document. Every reader returns a value or None and,
when the input is wrong, records a `ValidationIssue` at the line of the
offending key or value with the dotted field path and the expected shape.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from costplane.policy.celexpr import CompiledExpr, compile_expr
from costplane.policy.types import SourceLocation, ValidationIssue
from costplane.policy.yamlsource import YMap, YNode, YScalar, YSeq

__all__ = ["DocChecker", "check_expression", "check_name", "describe", "did_you_mean"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def did_you_mean(word: str, choices: Sequence[str], *, paren: bool = False) -> str:
    """'; did you mean 'x'?' (or ' (did you mean 'x'?)') for the closest choice, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        return ""
    return f" (did you mean {close[0]!r}?)" if paren else f"; did you mean {close[0]!r}?"


def describe(node: YNode) -> str:
    """A short description of what was given, for messages."""
    if isinstance(node, YMap):
        return "a mapping"
    if isinstance(node, YSeq):
        return "a list"
    value = node.value
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {node.text}"
    if isinstance(value, str):
        return f"the text {value!r}"
    return f"{type(value).__name__} {node.text}"


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


class DocChecker:
    """Reads one document; issues are appended to the shared list."""

    def __init__(self, file: str, issues: list[ValidationIssue], doc_line: int = 1) -> None:
        self.file = file
        self.issues = issues
        self.doc_line = doc_line

    def location(self, line: int) -> SourceLocation:
        return SourceLocation(self.file, line)

    def issue(self, line: int, field: str, message: str) -> None:
        self.issues.append(ValidationIssue(self.location(line), field, message))

    def keys(self, node: YMap, prefix: str, allowed: Sequence[str], required: Sequence[str] = ()) -> None:
        """Reject unknown keys (with a did-you-mean) and report missing required ones."""
        for key, entry in node.entries.items():
            if key not in allowed:
                self.issue(
                    entry.key_line,
                    _join(prefix, key),
                    f"unknown key {key!r}{did_you_mean(key, allowed)} (allowed: {', '.join(allowed)})",
                )
        for key in required:
            if key not in node.entries:
                self.issue(node.line, _join(prefix, key), f"required key {key!r} is missing")

    def mapping(self, node: YNode | None, field: str, *, what: str = "a mapping") -> YMap | None:
        if node is None:
            return None
        if isinstance(node, YMap):
            return node
        self.issue(node.line, field, f"expected {what}, got {describe(node)}")
        return None

    def sequence(self, node: YNode | None, field: str, *, what: str) -> YSeq | None:
        if node is None:
            return None
        if isinstance(node, YSeq):
            return node
        self.issue(node.line, field, f"expected {what}, got {describe(node)}")
        return None

    def string(
        self,
        node: YNode | None,
        field: str,
        *,
        choices: Sequence[str] = (),
        what: str = "a string",
        allow_empty: bool = False,
        noun: str = "value",
    ) -> str | None:
        if node is None:
            return None
        if not isinstance(node, YScalar) or not isinstance(node.value, str):
            expected = f"one of {', '.join(choices)}" if choices else what
            hint = ""
            if isinstance(node, YScalar) and not node.quoted and node.value is not None:
                hint = f' (write "{node.text}" in quotes if you meant the text)'
            self.issue(node.line, field, f"expected {expected}, got {describe(node)}{hint}")
            return None
        value: str = node.value
        if choices and value not in choices:
            self.issue(
                node.line,
                field,
                f"unknown {noun} {value!r}{did_you_mean(value, choices, paren=True)};"
                f" expected one of {', '.join(choices)}",
            )
            return None
        if not allow_empty and not value.strip():
            self.issue(node.line, field, f"expected {what}, got an empty string")
            return None
        return value

    def integer(
        self,
        node: YNode | None,
        field: str,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        what: str = "an integer",
    ) -> int | None:
        if node is None:
            return None
        value = node.value if isinstance(node, YScalar) else None
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not isinstance(node, YScalar)
            or node.quoted
        ):
            self.issue(node.line, field, f"expected {what}, got {describe(node)}")
            return None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            self.issue(node.line, field, f"expected {what}, got {value}")
            return None
        return value

    def decimal(
        self, node: YNode | None, field: str, *, minimum: Decimal, maximum: Decimal, what: str
    ) -> Decimal | None:
        """A number read exactly from its source text (`0.7` stays 0.7)."""
        if node is None:
            return None
        value = node.value if isinstance(node, YScalar) else None
        if not isinstance(node, YScalar) or isinstance(value, bool) or not isinstance(value, int | float):
            self.issue(node.line, field, f"expected {what}, got {describe(node)}")
            return None
        try:
            exact = Decimal(node.text.replace("_", ""))
        except InvalidOperation:
            self.issue(node.line, field, f"expected {what}, got {node.text!r}")
            return None
        if not exact.is_finite() or not minimum <= exact <= maximum:
            self.issue(node.line, field, f"expected {what}, got {node.text}")
            return None
        return exact

    def boolean(self, node: YNode | None, field: str) -> bool | None:
        if node is None:
            return None
        if isinstance(node, YScalar) and isinstance(node.value, bool):
            return node.value
        self.issue(node.line, field, f"expected true or false, got {describe(node)}")
        return None

    def string_list(
        self, node: YNode | None, field: str, *, choices: Sequence[str] = (), what: str = "a list of names"
    ) -> list[str] | None:
        """A list of distinct strings; a single string is not accepted (say `[a]`)."""
        seq = self.sequence(node, field, what=what)
        if seq is None:
            return None
        out: list[str] = []
        ok = True
        for i, item in enumerate(seq.items):
            value = self.string(item, f"{field}[{i}]", choices=choices)
            if value is None:
                ok = False
            elif value in out:
                self.issue(item.line, f"{field}[{i}]", f"{value!r} is listed twice")
                ok = False
            else:
                out.append(value)
        return out if ok else None


def check_name(chk: DocChecker, doc: YMap, *, free_text: bool = False) -> str | None:
    node = doc.get("name")
    name = chk.string(node, "name", what="a name")
    if name is not None and node is not None and not free_text and not _NAME.match(name):
        chk.issue(node.line, "name", f"invalid name {name!r}; expected 1-128 letters, digits and ._- ")
        return None
    return name


def check_expression(chk: DocChecker, node: YNode | None, field: str) -> CompiledExpr | None:
    """Compile a CEL expression (default `true`); problems are issues at its line."""
    if node is None:
        source = "true"
        line = 0
    elif isinstance(node, YScalar) and isinstance(node.value, bool):
        source, line = ("true" if node.value else "false"), node.line
    else:
        text = chk.string(node, field, what="a CEL expression")
        if text is None:
            return None
        source, line = text, node.line
    compiled, problems = compile_expr(source)
    for problem in problems:
        chk.issue(line, field, problem)
    return compiled
