"""AWS Signature Version 4 (`AWS4-HMAC-SHA256`), for requests the gateway sends to Bedrock.

`sign` returns the headers to add to a request (`x-amz-date`, `x-amz-security-token` when the
credentials have a session token, `authorization`). It signs every header it is given plus
`host`, the exact path sent (each segment URI-encoded once more, as AWS does for every service but
S3), the query, and the SHA-256 of the body. `verify` checks a signed request against a secret
(the upstream simulator uses it); `parse_authorization` reads the `authorization` header.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlsplit

__all__ = ["ALGORITHM", "MAX_CLOCK_SKEW_S", "AwsCredentials", "SignedAuthorization", "check_signed",
           "parse_authorization", "sign", "verify"]

ALGORITHM = "AWS4-HMAC-SHA256"
#: how far `x-amz-date` may be from the verifier's clock (AWS allows 15 minutes)
MAX_CLOCK_SKEW_S = 900
#: headers never signed: proxies and clients change them in flight
_UNSIGNED = frozenset({"authorization", "baggage", "connection", "expect", "keep-alive", "proxy-authenticate",
                       "proxy-authorization", "te", "traceparent", "tracestate", "trailer", "transfer-encoding",
                       "upgrade", "user-agent", "x-amzn-trace-id", "content-length", "accept-encoding"})
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;._-]+),\s*Signature=(?P<signature>[0-9a-f]{64})$")


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class SignedAuthorization:
    """The parts of an `AWS4-HMAC-SHA256` authorization header."""

    access_key_id: str
    date: str  # YYYYMMDD
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _canonical_uri(path: str) -> str:
    """The path as sent, with dot segments removed and every segment URI-encoded again."""
    segments: list[str] = []
    for part in (path or "/").split("/"):
        if part == "..":
            if segments:
                segments.pop()
        elif part not in ("", "."):
            segments.append(part)
    normal = "/" + "/".join(segments)
    if path.endswith("/") and normal != "/":
        normal += "/"
    return quote(normal, safe="/~")


def _canonical_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    encoded = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def _canonical_headers(headers: Mapping[str, str], names: tuple[str, ...]) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    return "".join(f"{name}:{' '.join(str(lowered.get(name, '')).split())}\n" for name in names)


def _string_to_sign(method: str, url: str, headers: Mapping[str, str], names: tuple[str, ...], body: bytes,
                    amz_date: str, scope: str) -> str:
    parts = urlsplit(url)
    canonical = "\n".join((
        method.upper(),
        _canonical_uri(parts.path),
        _canonical_query(parts.query),
        _canonical_headers(headers, names),
        ";".join(names),
        hashlib.sha256(body).hexdigest(),
    ))
    return "\n".join((ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()))


def _signature(secret: str, date: str, region: str, service: str, string_to_sign: str) -> str:
    key = _hmac(("AWS4" + secret).encode("utf-8"), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return host if parts.port is None or parts.port == default else f"{host}:{parts.port}"


def sign(method: str, url: str, headers: Mapping[str, str], body: bytes, credentials: AwsCredentials, *,
         region: str, service: str = "bedrock", now: datetime | None = None) -> dict[str, str]:
    """The headers that sign this request (to add to `headers`; `host` is the URL's)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    added = {"x-amz-date": amz_date}
    if credentials.session_token:
        added["x-amz-security-token"] = credentials.session_token
    signing: dict[str, str] = {k.lower(): v for k, v in headers.items() if k.lower() not in _UNSIGNED}
    signing.update(added)
    signing["host"] = _host(url)
    names = tuple(sorted(signing))
    scope = f"{date}/{region}/{service}/aws4_request"
    signature = _signature(credentials.secret_access_key, date, region, service,
                           _string_to_sign(method, url, signing, names, body, amz_date, scope))
    added["authorization"] = (f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
                              f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return added


def parse_authorization(value: str) -> SignedAuthorization | None:
    """The parts of an `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header (None otherwise)."""
    found = _AUTHORIZATION.match(value.strip())
    if found is None:
        return None
    return SignedAuthorization(found["key"], found["date"], found["region"], found["service"],
                               tuple(found["signed"].split(";")), found["signature"])


def verify(method: str, url: str, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    """True when `headers` carry a valid signature of this request made with `secret` (the headers'
    `x-amz-date` must be on the credential's date; freshness is the caller's concern)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    auth = parse_authorization(lowered.get("authorization", ""))
    amz_date = lowered.get("x-amz-date", "")
    if auth is None or not amz_date.startswith(auth.date) or "host" not in auth.signed_headers:
        return False
    if list(auth.signed_headers) != sorted(auth.signed_headers):
        return False
    scope = f"{auth.date}/{auth.region}/{auth.service}/aws4_request"
    expected = _signature(secret, auth.date, auth.region, auth.service,
                          _string_to_sign(method, url, lowered, auth.signed_headers, body, amz_date, scope))
    return hmac.compare_digest(expected, auth.signature)


def check_signed(method: str, host: str, paths: Sequence[str], query: str, headers: Mapping[str, str], body: bytes,
                 secret: str, *, now: datetime | None = None) -> str | None:
    """Why a request received as `host` + one of `paths` (the same path as the client may have
    encoded it) is not validly signed with `secret` within MAX_CLOCK_SKEW_S; None when it is."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        signed_at = datetime.strptime(lowered.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "the x-amz-date header is missing or malformed"
    if abs(((now or datetime.now(UTC)) - signed_at).total_seconds()) > MAX_CLOCK_SKEW_S:
        return f"the signature expired: x-amz-date is more than {MAX_CLOCK_SKEW_S // 60} minutes from the clock"
    suffix = f"?{query}" if query else ""
    if any(verify(method, f"http://{host}{path}{suffix}", lowered, body, secret) for path in paths):
        return None
    return "the signature does not match the request"
