"""YAML loading that keeps the source line of every document, key and value.

PyYAML's composer gives nodes with marks; this module turns them into a small
tree of `YScalar` / `YMap` / `YSeq` that keeps, for each scalar, both the value
YAML resolved and the *source text* it was written as. Money and other exact
numbers are read from that text (YAML would turn `amount: 0.1` into a float).

Mapping keys are always taken from their source text, so `on:` stays the string
"on" (YAML 1.1 would make it the boolean True).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from costplane.policy.types import SourceLocation, ValidationIssue

__all__ = [
    "Document",
    "YMap",
    "YNode",
    "YScalar",
    "YSeq",
    "parse_documents",
    "to_plain",
]

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class YScalar:
    value: Any  # what YAML resolved: str, int, float, bool, None, date, ...
    text: str  # the scalar's source text (without quotes)
    line: int
    quoted: bool = False


@dataclass(frozen=True, slots=True)
class YEntry:
    key_line: int
    node: YNode


@dataclass(frozen=True, slots=True)
class YMap:
    entries: dict[str, YEntry]
    line: int

    def get(self, key: str) -> YNode | None:
        entry = self.entries.get(key)
        return None if entry is None else entry.node

    def keys(self) -> Iterator[str]:
        return iter(self.entries)


@dataclass(frozen=True, slots=True)
class YSeq:
    items: tuple[YNode, ...]
    line: int


YNode = YScalar | YMap | YSeq


@dataclass(frozen=True, slots=True)
class Document:
    file: str
    line: int  # line of the document's first node
    root: YNode


class _Converter:
    def __init__(self, file: str, issues: list[ValidationIssue]) -> None:
        self.file = file
        self.issues = issues
        self.constructor = yaml.constructor.SafeConstructor()

    def issue(self, line: int, field: str, message: str) -> None:
        self.issues.append(ValidationIssue(SourceLocation(self.file, line), field, message))

    def convert(self, node: yaml.Node, path: str) -> YNode:
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            entries: dict[str, YEntry] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    self.issue(key_line, path or "(document)", "a mapping key must be a plain name")
                    continue
                key = str(key_node.value)
                sub = f"{path}.{key}" if path else key
                if key in entries:
                    first = entries[key].key_line
                    self.issue(key_line, sub, f"duplicate key {key!r} (first given at line {first})")
                    continue
                entries[key] = YEntry(key_line, self.convert(value_node, sub))
            return YMap(entries, line)
        if isinstance(node, yaml.SequenceNode):
            return YSeq(tuple(self.convert(item, f"{path}[{i}]") for i, item in enumerate(node.value)), line)
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.issue(line, path or "(document)", f"cannot read this value: {exc}")
            value = node.value
        return YScalar(value, str(node.value), line, quoted=getattr(node, "style", None) in ("'", '"'))


def parse_documents(data: bytes, display: str) -> tuple[list[Document], list[ValidationIssue]]:
    """Every non-empty document of one YAML file's bytes, and the issues found reading them.

    `display` is the file name used in issue locations. A YAML syntax error is
    an issue at its line; documents before it are still returned.
    """
    issues: list[ValidationIssue] = []
    docs: list[Document] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        issues.append(ValidationIssue(SourceLocation(display, 1), "(file)", f"cannot read file: not UTF-8 ({exc})"))
        return docs, issues
    converter = _Converter(display, issues)
    try:
        for node in yaml.compose_all(text, Loader=_Loader):
            if node is None:
                continue
            if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null") and node.value in ("", "~"):
                continue  # an empty document (e.g. a trailing `---`)
            docs.append(Document(display, node.start_mark.line + 1, converter.convert(node, "")))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        where = ""
        if exc.context and exc.problem:
            started = exc.context_mark
            at = (
                f" started at line {started.line + 1}"
                if started is not None and started.line + 1 != line
                else ""
            )
            where = f" ({exc.context}{at})"
        issues.append(
            ValidationIssue(SourceLocation(display, line), "(yaml)", f"YAML syntax error: {problem}{where}")
        )
    except yaml.YAMLError as exc:
        issues.append(ValidationIssue(SourceLocation(display, 1), "(yaml)", f"YAML error: {exc}"))
    return docs, issues


def to_plain(node: YNode) -> Any:
    """The plain Python value of a node (mappings -> dict, sequences -> list)."""
    if isinstance(node, YMap):
        return {key: to_plain(entry.node) for key, entry in node.entries.items()}
    if isinstance(node, YSeq):
        return [to_plain(item) for item in node.items]
    return node.value
