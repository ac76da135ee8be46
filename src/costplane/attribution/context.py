"""The attribution context that every cost event and decision carries.

A Context is immutable. Its dimensions are the fixed vocabulary of the product
(org … outcome); anything else goes into `tags`. Values are validated here so
that every enforcement point rejects the same bad input the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "DIMENSIONS",
    "Context",
    "InvalidAttribute",
    "validate_value",
]

DIMENSIONS: tuple[str, ...] = (
    "org",
    "team",
    "project",
    "user",
    "owner",
    "tier",
    "pipeline",
    "run",
    "experiment",
    "agent",
    "step",
    "tool",
    "trace",
    "outcome",
)

_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,127}$")
_TAG_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
MAX_TAGS = 32


class InvalidAttribute(ValueError):
    """An attribution value that is not allowed; `source` names where it came from."""

    def __init__(self, source: str, value: str, expected: str) -> None:
        self.source = source
        self.value = value
        self.expected = expected
        super().__init__(f"invalid value {value!r} in {source}: expected {expected}")


def validate_value(source: str, value: str) -> str:
    """Return value if it is a valid dimension/tag value, else raise InvalidAttribute."""
    if not _VALUE.match(value):
        raise InvalidAttribute(
            source, value, "1-128 characters of letters, digits and ._:/@+=- starting with a letter or digit"
        )
    return value


def validate_tag_name(source: str, name: str) -> str:
    if not _TAG_NAME.match(name):
        raise InvalidAttribute(source, name, "a tag name of lowercase letters, digits and _.- (max 63)")
    return name


@dataclass(frozen=True, slots=True)
class Context:
    """Who and what caused a cost. Every field is optional; `key_id` is set by the gateway."""

    org: str | None = None
    team: str | None = None
    project: str | None = None
    user: str | None = None
    owner: str | None = None
    tier: str | None = None
    pipeline: str | None = None
    run: str | None = None
    experiment: str | None = None
    agent: str | None = None
    step: str | None = None
    tool: str | None = None
    trace: str | None = None
    outcome: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    key_id: str | None = None

    def get(self, dimension: str) -> str | None:
        if dimension == "key":
            return self.key_id
        if dimension in DIMENSIONS:
            value: str | None = getattr(self, dimension)
            return value
        return self.tags.get(dimension)

    def with_values(self, **values: str | None) -> Context:
        return replace(self, **values)  # type: ignore[arg-type]

    def dimensions(self) -> dict[str, str]:
        """The set dimensions, without tags."""
        return {name: value for name in DIMENSIONS if (value := getattr(self, name)) is not None}

    def as_cel(self) -> dict[str, Any]:
        """The `ctx` variable seen by CEL: every dimension present (unset = ""), plus tags and key."""
        out: dict[str, Any] = {name: (getattr(self, name) or "") for name in DIMENSIONS}
        out["tags"] = dict(self.tags)
        out["key"] = self.key_id or ""
        return out

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str = "context") -> Context:
        """Build from a plain mapping (YAML test cases, SDK, API); unknown names become tags."""
        dims: dict[str, str] = {}
        tags: dict[str, str] = {}
        for name, raw in values.items():
            if raw is None:
                continue
            if name == "tags":
                if not isinstance(raw, Mapping):
                    raise InvalidAttribute(f"{source}.tags", repr(raw), "a mapping of tag name to value")
                for tag, tag_value in raw.items():
                    tags[validate_tag_name(f"{source}.tags", str(tag))] = validate_value(
                        f"{source}.tags.{tag}", str(tag_value)
                    )
                continue
            value = validate_value(f"{source}.{name}", str(raw))
            if name in DIMENSIONS:
                dims[name] = value
            else:
                tags[validate_tag_name(source, name)] = value
        if len(tags) > MAX_TAGS:
            raise InvalidAttribute(f"{source}.tags", f"{len(tags)} tags", f"at most {MAX_TAGS} tags")
        return cls(**dims, tags=tags)
