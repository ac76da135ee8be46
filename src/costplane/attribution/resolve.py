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

__all__ = [
    "CONTROL_HEADERS",
    "MAX_BAGGAGE_BYTES",
    "MAX_BAGGAGE_MEMBERS",
    "AttributionConflict",
    "parse_traceparent",
    "resolve_context",
    "traceparent_ids",
]

HEADER_PREFIX = "x-costplane-"
TAG_PREFIX = "x-costplane-tag-"
BAGGAGE_PREFIX = "costplane."
#: x-costplane-* request headers that steer the gateway rather than attribute cost.
CONTROL_HEADERS = frozenset({"x-costplane-cache"})
#: W3C Trace Context: version-traceid-parentid-flags, lowercase hex; a later version may append
#: fields after another "-", version 00 may not.
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
#: W3C Baggage limits: at most 64 list members and 8192 bytes in all.
MAX_BAGGAGE_BYTES = 8192
MAX_BAGGAGE_MEMBERS = 64
#: RFC 7230 token characters (a baggage key); baggage-octet excludes space " , ; and backslash.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_BAGGAGE_VALUE = re.compile(r"^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*$")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


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
    if traceparent is not None:
        values.setdefault("trace", parse_traceparent(traceparent))

    seen: dict[str, str] = {}
    for header, raw in headers.items():
        if not header.startswith(HEADER_PREFIX) or header in CONTROL_HEADERS:
            continue
        value = raw.strip()
        if seen.setdefault(header, value) != value:
            raise InvalidAttribute(f"{header} header", value, f"one value (it was also given as {seen[header]!r})")
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


def parse_traceparent(header: str) -> str:
    """The trace id of a W3C `traceparent` header; InvalidAttribute if the header is not valid."""
    return traceparent_ids(header)[0]


def traceparent_ids(header: str) -> tuple[str, str]:
    """(trace id, parent id) of a W3C `traceparent` header; InvalidAttribute if it is not valid.
    The parent id is the span of the caller that made the request (its HTTP client span, or the
    span whose context it propagated)."""
    value = header.strip()
    match = _TRACEPARENT.match(value)
    problem = None
    if match is None:
        problem = "version-traceid-parentid-flags in lowercase hex (W3C Trace Context)"
    elif match.group(1) == "ff":
        problem = "a version from 00 to fe (ff is invalid)"
    elif match.group(1) == "00" and match.group(5):
        problem = "exactly version-traceid-parentid-flags for version 00"
    elif match.group(2) == "0" * 32:
        problem = "a trace id that is not all zeros"
    elif match.group(3) == "0" * 16:
        problem = "a parent id that is not all zeros"
    if problem is not None or match is None:
        raise InvalidAttribute("traceparent header", value[:80], problem or "")
    return match.group(2), match.group(3)


def _parse_baggage(header: str) -> dict[str, str]:
    """The costplane.* members of a W3C baggage header. Every member must be well formed
    (key token, baggage octets, valid percent-encoding); others are left alone."""
    size = len(header.encode("utf-8", "surrogateescape"))
    if size > MAX_BAGGAGE_BYTES:
        raise InvalidAttribute("baggage header", f"{size} bytes", f"at most {MAX_BAGGAGE_BYTES} bytes")
    members = header.split(",")
    if len(members) > MAX_BAGGAGE_MEMBERS:
        raise InvalidAttribute("baggage header", f"{len(members)} members", f"at most {MAX_BAGGAGE_MEMBERS} members")
    out: dict[str, str] = {}
    for member in members:
        parts = member.split(";")
        key, value = _baggage_pair(parts[0], member, value_required=True)
        for prop in parts[1:]:
            _baggage_pair(prop, member, value_required=False)
        if key.startswith(BAGGAGE_PREFIX):
            out[key[len(BAGGAGE_PREFIX):]] = value
    return out


def _baggage_pair(text: str, member: str, *, value_required: bool) -> tuple[str, str]:
    """A key[=value] of a baggage member or property, the value percent-decoded (UTF-8)."""
    key, sep, value = text.partition("=")
    key, value = key.strip(" \t"), value.strip(" \t")
    shown = member.strip()[:80]
    if not _TOKEN.match(key) or (value_required and not sep):
        raise InvalidAttribute("baggage header", shown, "comma-separated key=value members (W3C baggage)")
    if not _BAGGAGE_VALUE.match(value) or _PERCENT.search(value):
        raise InvalidAttribute("baggage header", shown, "values of printable ASCII without space, quote, comma, "
                                                        "semicolon or backslash, other bytes %-encoded as %XX")
    try:
        decoded = unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise InvalidAttribute("baggage header", shown, "%-encoded bytes that are UTF-8") from None
    return key, decoded
