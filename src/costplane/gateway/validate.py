"""A small declarative schema for JSON request bodies: a table of field → expected type.

Each protocol describes its body as a tree of specs (`Obj`, `Arr`, `Str`, `Int`, `Num`, `Bool`,
`OneOf`, `Tagged`, …) and `check_body` walks the body against it once. The first mismatch raises
`BodyError` whose `param` is the field path (`messages[2].content[0].type`), so every error names
the field. Objects are open: keys a spec does not know are forwarded untouched (providers add
parameters constantly); the keys it knows must have the documented type. `Tagged` is closed: a
`type` that is not listed is refused, because an unknown content part would be forwarded and
metered blind.

Nesting is bounded separately (`check_depth`), so free-form values (JSON schemas of tools,
metadata, parameters the gateway does not know) cannot nest without limit either.
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
    "Num",
    "Obj",
    "OneOf",
    "Spec",
    "Str",
    "Tagged",
    "check_body",
    "check_depth",
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
        super().__init__(f"{param}: {message}" if param else message)


def kind_of(value: Any) -> str:
    """The JSON type name of a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


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

    def check(self, value: Any, path: str) -> None:
        raise NotImplementedError

    def mismatch(self, value: Any, path: str) -> BodyError:
        return BodyError(path, f"expected {self.describe}, got {_got(value)}")


@dataclass(frozen=True, slots=True)
class Any_(Spec):
    """Any JSON value (still bounded by `check_depth`)."""

    kinds: frozenset[str] = frozenset({"null", "boolean", "integer", "number", "string", "array", "object"})
    describe: str = "any value"

    def check(self, value: Any, path: str) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Bool(Spec):
    kinds: frozenset[str] = frozenset({"boolean"})
    describe: str = "a boolean (true or false)"

    def check(self, value: Any, path: str) -> None:
        if value is not True and value is not False:
            raise self.mismatch(value, path)


@dataclass(frozen=True, slots=True)
class Int(Spec):
    lo: int | None = None
    hi: int | None = None
    kinds: frozenset[str] = frozenset({"integer"})
    describe: str = "an integer"

    def check(self, value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.mismatch(value, path)
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise BodyError(path, f"expected an integer {_range(self.lo, self.hi)}, got {value}")


@dataclass(frozen=True, slots=True)
class Num(Spec):
    lo: float | None = None
    hi: float | None = None
    kinds: frozenset[str] = frozenset({"integer", "number"})
    describe: str = "a number"

    def check(self, value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.mismatch(value, path)
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise BodyError(path, f"expected a number {_range(self.lo, self.hi)}, got {value}")


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

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise self.mismatch(value, path)
        if self.nonempty and not value.strip():
            raise BodyError(path, "expected a non-empty string")
        if self.enum is not None and value not in self.enum:
            raise BodyError(path, f"expected one of {', '.join(sorted(self.enum))}; got {_got(value)}")


@dataclass(frozen=True, slots=True)
class Arr(Spec):
    item: Spec = field(default_factory=Any_)
    min_items: int = 0
    max_items: int | None = None
    kinds: frozenset[str] = frozenset({"array"})
    describe: str = "an array"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, list):
            raise self.mismatch(value, path)
        if len(value) < self.min_items:
            raise BodyError(path, f"expected an array of at least {self.min_items} item(s), got {len(value)}")
        if self.max_items is not None and len(value) > self.max_items:
            raise BodyError(path, f"expected an array of at most {self.max_items} items, got {len(value)}")
        item = self.item
        if isinstance(item, Any_):
            return
        for index, element in enumerate(value):
            item.check(element, f"{path}[{index}]")


@dataclass(frozen=True, slots=True)
class Map(Spec):
    """An object whose keys are free and whose values all have one shape."""

    value: Spec = field(default_factory=Any_)
    max_items: int | None = None
    kinds: frozenset[str] = frozenset({"object"})
    describe: str = "an object"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise self.mismatch(value, path)
        if self.max_items is not None and len(value) > self.max_items:
            raise BodyError(path, f"expected at most {self.max_items} entries, got {len(value)}")
        for key, element in value.items():
            self.value.check(element, _join(path, str(key)))


@dataclass(frozen=True, slots=True)
class Obj(Spec):
    """An object with known fields (each checked when present, and when not null if `nullable`)
    and `required` ones. Unknown keys are allowed and left alone."""

    fields: Mapping[str, Spec] = field(default_factory=dict)
    required: Sequence[str] = ()
    nullable: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset({"object"})
    describe: str = "an object"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise self.mismatch(value, path)
        for name in self.required:
            if value.get(name) is None:
                raise BodyError(_join(path, name), "this field is required")
        fields = self.fields
        for name, element in value.items():
            spec = fields.get(name)
            if spec is None or (element is None and name in self.nullable):
                continue
            spec.check(element, _join(path, name))


class OneOf(Spec):
    """One of several shapes, chosen by the value's JSON type (string *or* array of parts …)."""

    def __init__(self, *options: Spec) -> None:
        self.options = options
        self.kinds = frozenset().union(*(option.kinds for option in options))
        self.describe = " or ".join(option.describe for option in options)

    def check(self, value: Any, path: str) -> None:
        kind = kind_of(value)
        for option in self.options:
            if kind in option.kinds:
                option.check(value, path)
                return
        raise self.mismatch(value, path)


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

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise self.mismatch(value, path)
        tag = value.get(self.tag)
        where = _join(path, self.tag)
        if tag is None and self.default is not None:
            tag = self.default
        if not isinstance(tag, str):
            if tag is None:
                raise BodyError(where, "this field is required")
            raise BodyError(where, f"expected a string, got {_got(tag)}")
        variant = self.variants.get(tag)
        if variant is None and self.pattern is not None and self.pattern.match(tag):
            variant = self.patterned
        if variant is None:
            raise BodyError(where, f"unknown {self.tag} {_got(tag)}; expected one of {', '.join(sorted(self.variants))}"
                            + (f" or a type like {self.pattern.pattern}" if self.pattern is not None else ""))
        variant.check(value, path)


def check_body(spec: Spec, body: Any) -> None:
    """Validate a decoded body against its protocol's spec (nesting first, then types)."""
    check_depth(body)
    spec.check(body, "")


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Refuse arrays/objects nested deeper than `limit` levels, naming the path that does."""
    path = _too_deep(value, limit)
    if path is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in reversed(path)).lstrip(".")
        raise BodyError(where or "body", f"nested deeper than {limit} levels of arrays and objects")


def _too_deep(value: Any, budget: int) -> list[str | int] | None:
    if isinstance(value, dict):
        if budget <= 0:
            return []
        for key, element in value.items():
            if isinstance(element, dict | list):
                found = _too_deep(element, budget - 1)
                if found is not None:
                    found.append(str(key))
                    return found
    elif isinstance(value, list):
        if budget <= 0:
            return []
        for index, element in enumerate(value):
            if isinstance(element, dict | list):
                found = _too_deep(element, budget - 1)
                if found is not None:
                    found.append(index)
                    return found
    return None
