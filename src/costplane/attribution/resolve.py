"""Build a request's Context from its sources, in precedence order.

1. the virtual key's bound attributes — a request can never override them;
2. `x-costplane-<dimension>` headers (and `x-costplane-tag-<name>` for free tags);
3. W3C `baggage` entries `costplane.<dimension>=value` (ambient: lowest precedence);
the trace id comes from `traceparent` unless a higher source names one.

Headers are passed as a plain lower-cased mapping, so this module knows no web framework.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from urllib.parse import unquote

from costplane.attribution.context import (
    DIMENSIONS,
    MAX_TAGS,
    Context,
    InvalidAttribute,
    validate_tag_name,
    validate_value,
)

__all__ = ["CONTROL_HEADERS", "AttributionConflict", "resolve_context"]

HEADER_PREFIX = "x-costplane-"
TAG_PREFIX = "x-costplane-tag-"
BAGGAGE_PREFIX = "costplane."
#: x-costplane-* request headers that steer the gateway rather than attribute cost.
CONTROL_HEADERS = frozenset({"x-costplane-cache"})
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_MAX_BAGGAGE_BYTES = 8192


class AttributionConflict(InvalidAttribute):
    """A header tried to change an attribute the key is bound to (a trust boundary)."""


def resolve_context(
    headers: Mapping[str, str],
    key_attributes: Mapping[str, str] | None = None,
    key_id: str | None = None,
) -> Context:
    """Merge key, header and baggage sources into one validated Context.

    Raises InvalidAttribute (its `source` names the header) for a bad value or
    an unknown x-costplane-* header, AttributionConflict when a header
    contradicts the key.
    """
    bound = dict(key_attributes or {})
    values: dict[str, str] = {}
    tags: dict[str, str] = {}

    baggage = headers.get("baggage")
    if baggage:
        for name, value in _parse_baggage(baggage).items():
            _assign(name, value, "baggage", values, tags)

    traceparent = headers.get("traceparent")
    if traceparent:
        match = _TRACEPARENT.match(traceparent.strip().lower())
        if match is None or match.group(1) == "0" * 32:
            raise InvalidAttribute("traceparent header", traceparent, "version-traceid-spanid-flags (W3C)")
        values.setdefault("trace", match.group(1))

    for header, raw in headers.items():
        if not header.startswith(HEADER_PREFIX) or header in CONTROL_HEADERS:
            continue
        value = raw.strip()
        if header.startswith(TAG_PREFIX):
            name = validate_tag_name(f"{header} header", header[len(TAG_PREFIX):].replace("-", "_"))
            tags[name] = validate_value(f"{header} header", value)
            continue
        name = header[len(HEADER_PREFIX):]
        if name not in DIMENSIONS:
            known = [*DIMENSIONS, "tag-<name>"]
            hint = difflib.get_close_matches(name, known, n=1)
            expected = f"one of x-costplane-{{{', '.join(known)}}}"
            if hint:
                expected += f" (did you mean x-costplane-{hint[0]}?)"
            raise InvalidAttribute(f"{header} header", name, expected)
        values[name] = validate_value(f"{header} header", value)
        if name in bound and bound[name] != value:
            raise AttributionConflict(
                f"{header} header", value, f"the key's bound {name}={bound[name]!r} (keys cannot be overridden)"
            )

    for name, value in bound.items():
        if name in DIMENSIONS:
            values[name] = value
        else:
            tags[name] = value
    if len(tags) > MAX_TAGS:
        raise InvalidAttribute("x-costplane-tag-* headers", f"{len(tags)} tags", f"at most {MAX_TAGS} tags")
    return Context(**values, tags=tags, key_id=key_id)


def _assign(name: str, value: str, source: str, values: dict[str, str], tags: dict[str, str]) -> None:
    if name.startswith("tag."):
        tag = validate_tag_name(f"{source} entry costplane.{name}", name[4:])
        tags[tag] = validate_value(f"{source} entry costplane.{name}", value)
    elif name in DIMENSIONS:
        values[name] = validate_value(f"{source} entry costplane.{name}", value)
    else:
        raise InvalidAttribute(f"{source} header", f"costplane.{name}", f"costplane.<one of {', '.join(DIMENSIONS)}>")


def _parse_baggage(header: str) -> dict[str, str]:
    """The costplane.* members of a W3C baggage header; other members are left alone."""
    if len(header.encode()) > _MAX_BAGGAGE_BYTES:
        raise InvalidAttribute("baggage header", f"{len(header)} bytes", f"at most {_MAX_BAGGAGE_BYTES} bytes")
    out: dict[str, str] = {}
    for member in header.split(","):
        member = member.strip()
        if not member:
            continue
        pair = member.split(";", 1)[0]
        if "=" not in pair:
            raise InvalidAttribute("baggage header", member, "comma-separated key=value members (W3C baggage)")
        key, value = pair.split("=", 1)
        key = key.strip()
        if key.startswith(BAGGAGE_PREFIX):
            out[key[len(BAGGAGE_PREFIX):]] = unquote(value.strip())
    return out
