"""Local users and API tokens: salted scrypt password hashes, bearer tokens stored as SHA-256.

Nothing here knows HTTP; the API and the CLI both call it. Secrets are returned once to the
caller and never logged or stored in the clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from costplane.auth.authenticator import TOKEN_PREFIX, Authenticator
from costplane.core.decision import new_id
from costplane.ledger.store import Store
from costplane.ledger.usertypes import ROLES, ApiTokenRecord, UserRecord

__all__ = [
    "TOKEN_PREFIX",
    "CredentialError",
    "hash_password",
    "issue_token",
    "new_user",
    "token_user",
    "verify_password",
]

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class CredentialError(ValueError):
    """A user or token request that cannot be honoured; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash` with a fresh 16-byte salt."""
    if len(password) < 8:
        raise CredentialError("password", "a password needs at least 8 characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of `password` against a `hash_password` result; False for no password."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
    expected = _unb64(parts[5])
    digest = hashlib.scrypt(password.encode(), salt=_unb64(parts[4]), n=n, r=r, p=p, dklen=len(expected))
    return hmac.compare_digest(digest, expected)


def new_user(store: Store, name: str, role: str, teams: Sequence[str] = (), password: str | None = None,
             projects: Sequence[str] = ()) -> UserRecord:
    """Create a local user; developers and viewers must be scoped to at least one team or project."""
    if not _NAME.match(name):
        raise CredentialError("name", f"a user name is 1-64 of letters, digits, _ . @ -, got {name!r}")
    if role not in ROLES:
        raise CredentialError("role", f"role must be one of {', '.join(ROLES)}, got {role!r}")
    clean = tuple(dict.fromkeys(t.strip() for t in teams if t.strip()))
    clean_projects = tuple(dict.fromkeys(p.strip() for p in projects if p.strip()))
    if role in ("developer", "viewer") and not clean and not clean_projects:
        raise CredentialError("teams", f"a {role} must be scoped to at least one team (or project)")
    if store.user_by_name(name) is not None:
        raise CredentialError("name", f"a user named {name!r} already exists")
    user = UserRecord(id=new_id("usr"), name=name, role=role, teams=clean,
                      password_hash=hash_password(password) if password is not None else "",
                      created_at=datetime.now(UTC), projects=clean_projects)
    store.create_user(user)
    return user


def issue_token(store: Store, user: UserRecord, name: str = "api", expires_at: datetime | None = None
                ) -> tuple[str, ApiTokenRecord]:
    """Mint an API token for `user`; returns the secret (shown once) and the stored record."""
    if not user.active:
        raise CredentialError("user", f"user {user.name!r} is disabled")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiTokenRecord(id=new_id("tok"), secret_hash=hashlib.sha256(secret.encode()).hexdigest(),
                            prefix=secret[:10], user_id=user.id, name=name, created_at=datetime.now(UTC),
                            expires_at=expires_at)
    store.create_api_token(record)
    return secret, record


def token_user(store: Store, secret: str, now: datetime) -> tuple[UserRecord, ApiTokenRecord] | None:
    """The active user and usable token behind a bearer secret, or None (one look-up outside a server,
    e.g. the CLI; `now` is when expiry is judged)."""
    found = Authenticator(store).token_user(secret)
    if found is None or not found[1].usable(now):
        return None
    return found
