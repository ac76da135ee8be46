"""A small declarative schema for JSON request bodies: a table of field → expected type.

Each protocol describes its body as a tree of specs (`Obj`, `Arr`, `Str`, `Int`, `Num`, `Bool`,
`OneOf`, `Tagged`, …) and `check_body` walks the body against it once. The first mismatch raises
`BodyError` whose `param` is the field path (`messages[2].content[0].type`), so every error names
the field. Objects are open: keys a spec does not know are forwarded untouched (providers add
parameters constantly); the keys it knows must have the documented type. `Tagged` is closed: a
`type` that is not listed is refused, because an unknown content part would be forwarded and
metered blind.

Nesting is bounded too: the typed part of a spec is finite, and every free-form value (JSON
schemas of tools, metadata, parameters the gateway does not know) is checked against what is left
of `MAX_DEPTH` where it sits, so the walk never visits a container twice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_OUTPUT_TOKENS",
    "Any_",
    "Arr",
    "BodyError",
    "Bool",
    "Int",
    "Map",
    "Mismatch",
    "Num",
    "Obj",
    "OneOf",
    "Spec",
    "Str",
    "Tagged",
    "check_body",
    "kind_of",
]

#: Largest output cap (`max_tokens` …) accepted; far above any model's, it keeps worst-case sums sane.
MAX_OUTPUT_TOKENS = 1_000_000
#: Deepest nesting of arrays and objects accepted in a body (the body object itself is level 1).
MAX_DEPTH = 64


class BodyError(ValueError):
    """A request body that does not match its protocol; `param` is the field path."""

    def __init__(self, param: str, message: str) -> None:
        self.param = param
        self.detail = message
        super().__init__(f"{param}: {message}" if param else message)


class Mismatch(Exception):
    """Raised inside the walk; containers add their key on the way out, so a path is only
    built for the one value that fails (nothing is built for a valid body)."""

    def __init__(self, message: str, *inner: str | int) -> None:
        self.message = message
        self.where: list[str | int] = list(reversed(inner))  # innermost first


def _path(parts: Sequence[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")


def kind_of(value: Any) -> str:
    """The JSON type name of a decoded value."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "boolean"
    kind = _KINDS.get(type(value))
    if kind is not None:
        return kind
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


_KINDS: dict[type, str] = {int: "integer", float: "number", str: "string", list: "array", dict: "object"}


def _got(value: Any) -> str:
    kind = kind_of(value)
    if kind in ("string", "integer", "number", "boolean"):
        text = repr(value)
        return f"{kind} {text[:40]}{'…' if len(text) > 40 else ''}"
    return kind


class Spec:
    """One expected JSON shape. `kinds` are the JSON types it accepts (used by `OneOf`)."""

    kinds: frozenset[str] = frozenset()
    describe: str = "a value"

    def check(self, value: Any, depth: int) -> None:
        """Raise `Mismatch` when value does not match; `depth` is value's level (the body is 1)."""
        raise NotImplementedError

    def mismatch(self, value: Any) -> Mismatch:
        return Mismatch(f"expected {self.describe}, got {_got(value)}")


@dataclass(frozen=True, slots=True)
class Any_(Spec):
    """Any JSON value (still bounded by `check_depth`)."""

    kinds: frozenset[str] = frozenset({"null", "boolean", "integer", "number", "string", "array", "object"})
    describe: str = "any value"

    def check(self, value: Any, depth: int) -> None:
        _bounded(value, depth)


@dataclass(frozen=True, slots=True)
class Bool(Spec):
    kinds: frozenset[str] = frozenset({"boolean"})
    describe: str = "a boolean (true or false)"

    def check(self, value: Any, depth: int) -> None:
        if value is not True and value is not False:
            raise self.mismatch(value)


@dataclass(frozen=True, slots=True)
class Int(Spec):
    lo: int | None = None
    hi: int | None = None
    kinds: frozenset[str] = frozenset({"integer"})
    describe: str = "an integer"

    def check(self, value: Any, depth: int) -> None:
        if type(value) is not int:
            raise self.mismatch(value)
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise Mismatch(f"expected an integer {_range(self.lo, self.hi)}, got {value}")


@dataclass(frozen=True, slots=True)
class Num(Spec):
    lo: float | None = None
    hi: float | None = None
    kinds: frozenset[str] = frozenset({"integer", "number"})
    describe: str = "a number"

    def check(self, value: Any, depth: int) -> None:
        kind = type(value)
        if kind is not float and kind is not int:
            raise self.mismatch(value)
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise Mismatch(f"expected a number {_range(self.lo, self.hi)}, got {value}")


def _range(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"from {lo:g} to {hi:g}"
    return f"≥ {lo:g}" if lo is not None else f"≤ {hi:g}"


@dataclass(frozen=True, slots=True)
class Str(Spec):
    enum: frozenset[str] | None = None
    nonempty: bool = False
    kinds: frozenset[str] = frozenset({"string"})
    describe: str = "a string"

    def check(self, value: Any, depth: int) -> None:
        if type(value) is not str:
            raise self.mismatch(value)
        if self.nonempty and not value.strip():
            raise Mismatch("expected a non-empty string")
        if self.enum is not None and value not in self.enum:
            raise Mismatch(f"expected one of {', '.join(sorted(self.enum))}; got {_got(value)}")


@dataclass(frozen=True, slots=True)
class Arr(Spec):
    item: Spec = field(default_factory=Any_)
    min_items: int = 0
    max_items: int | None = None
    kinds: frozenset[str] = frozenset({"array"})
    describe: str = "an array"

    def check(self, value: Any, depth: int) -> None:
        if type(value) is not list:
            raise self.mismatch(value)
        if len(value) < self.min_items:
            raise Mismatch(f"expected an array of at least {self.min_items} item(s), got {len(value)}")
        if self.max_items is not None and len(value) > self.max_items:
            raise Mismatch(f"expected an array of at most {self.max_items} items, got {len(value)}")
        item = self.item
        index = 0
        depth += 1
        try:
            for index, element in enumerate(value):  # noqa: B007 (index is read on failure)
                item.check(element, depth)
        except Mismatch as exc:
            exc.where.append(index)
            raise


@dataclass(frozen=True, slots=True)
class Map(Spec):
    """An object whose keys are free and whose values all have one shape."""

    value: Spec = field(default_factory=Any_)
    max_items: int | None = None
    kinds: frozenset[str] = frozenset({"object"})
    describe: str = "an object"

    def check(self, value: Any, depth: int) -> None:
        if type(value) is not dict:
            raise self.mismatch(value)
        if self.max_items is not None and len(value) > self.max_items:
            raise Mismatch(f"expected at most {self.max_items} entries, got {len(value)}")
        spec = self.value
        depth += 1
        for key, element in value.items():
            try:
                spec.check(element, depth)
            except Mismatch as exc:
                exc.where.append(str(key))
                raise


@dataclass(frozen=True, slots=True)
class Obj(Spec):
    """An object with known fields (each checked when present, and when not null if `nullable`)
    and `required` ones. Unknown keys are allowed and left alone."""

    fields: Mapping[str, Spec] = field(default_factory=dict)
    required: Sequence[str] = ()
    nullable: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset({"object"})
    describe: str = "an object"

    def check(self, value: Any, depth: int) -> None:
        if type(value) is not dict:
            raise self.mismatch(value)
        for name in self.required:
            if value.get(name) is None:
                raise Mismatch("this field is required", name)
        fields = self.fields
        depth += 1
        for name, element in value.items():
            spec = fields.get(name)
            if element is None and name in self.nullable:
                continue
            try:
                if spec is None:
                    _bounded(element, depth)  # not ours to type, but still bounded
                else:
                    spec.check(element, depth)
            except Mismatch as exc:
                exc.where.append(name)
                raise


class OneOf(Spec):
    """One of several shapes, chosen by the value's JSON type (string *or* array of parts …)."""

    def __init__(self, *options: Spec) -> None:
        self.options = options
        self.kinds = frozenset().union(*(option.kinds for option in options))
        self.describe = " or ".join(option.describe for option in options)

    def check(self, value: Any, depth: int) -> None:
        kind = kind_of(value)
        for option in self.options:
            if kind in option.kinds:
                option.check(value, depth)
                return
        raise self.mismatch(value)


@dataclass(frozen=True, slots=True)
class Tagged(Spec):
    """An object told apart by its `type` field; a type not listed is refused.

    `default` is the variant of an object without the tag; types matching `pattern` (e.g. dated
    server tool versions) are checked against `patterned`."""

    variants: Mapping[str, Spec] = field(default_factory=dict)
    tag: str = "type"
    default: str | None = None
    pattern: re.Pattern[str] | None = None
    patterned: Spec | None = None
    kinds: frozenset[str] = frozenset({"object"})
    describe: str = "an object"

    def check(self, value: Any, depth: int) -> None:
        if type(value) is not dict:
            raise self.mismatch(value)
        tag = value.get(self.tag)
        if tag is None and self.default is not None:
            tag = self.default
        if type(tag) is not str:
            if tag is None:
                raise Mismatch("this field is required", self.tag)
            raise Mismatch(f"expected a string, got {_got(tag)}", self.tag)
        variant = self.variants.get(tag)
        if variant is None and self.pattern is not None and self.pattern.match(tag):
            variant = self.patterned
        if variant is None:
            known = ", ".join(sorted(self.variants))
            hint = f" or a type like {self.pattern.pattern}" if self.pattern is not None else ""
            raise Mismatch(f"unknown {self.tag} {_got(tag)}; expected one of {known}{hint}", self.tag)
        variant.check(value, depth)


def check_body(spec: Spec, body: Any) -> None:
    """Validate a decoded body against its protocol's spec (nesting first, then types);
    BodyError names the field path of the first mismatch."""
    try:
        spec.check(body, 1)
    except Mismatch as exc:
        raise BodyError(_path(exc.where[::-1]) or "body", exc.message) from None


def _bounded(value: Any, depth: int) -> None:
    """Refuse a free-form value (one no spec types) that nests past MAX_DEPTH; the typed
    structure of a spec is finite, so checking the free-form parts bounds the whole body."""
    kind = type(value)
    if kind is dict or kind is list:
        found = _too_deep(value, MAX_DEPTH + 1 - depth)
        if found is not None:
            exc = Mismatch(f"nested deeper than {MAX_DEPTH} levels of arrays and objects")
            exc.where = found
            raise exc


def _too_deep(value: Any, budget: int) -> list[str | int] | None:
    if budget <= 0:
        return []
    if type(value) is dict:
        for key, element in value.items():
            kind = type(element)
            if kind is dict or kind is list:
                found = _too_deep(element, budget - 1)
                if found is not None:
                    found.append(str(key))
                    return found
    else:
        for index, element in enumerate(value):
            kind = type(element)
            if kind is dict or kind is list:
                found = _too_deep(element, budget - 1)
                if found is not None:
                    found.append(index)
                    return found
    return None

