"""Records of local users and their API tokens (schema v7). Plain immutable values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["ROLES", "ApiTokenRecord", "DecisionQuery", "UserRecord"]

ROLES: tuple[str, ...] = ("admin", "finance", "developer", "viewer")


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A local user. `teams` scopes a developer or viewer; admin and finance see everything."""

    id: str
    name: str
    role: str  # one of ROLES
    teams: tuple[str, ...]
    password_hash: str  # "" = no password (token-only user)
    created_at: datetime
    disabled_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True, slots=True)
class ApiTokenRecord:
    """An API token of a user. Only the SHA-256 of the secret is stored."""

    id: str
    secret_hash: str
    prefix: str
    user_id: str
    name: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def usable(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True, slots=True)
class DecisionQuery:
    """Filters of the decisions log; every set filter must match. `teams`, when not None,
    keeps only decisions whose context team is one of them (an empty tuple matches nothing)."""

    effect: str | None = None
    policy: str | None = None
    key_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    teams: tuple[str, ...] | None = None
    limit: int = 100
