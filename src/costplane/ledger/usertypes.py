"""Records of local users and their API tokens (schema v7, projects v9), the read scope of a
user, and the filters of the API's scoped queries. Plain immutable values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["ROLES", "ApiTokenRecord", "DecisionQuery", "EnvironmentQuery", "Scope", "UserRecord"]

ROLES: tuple[str, ...] = ("admin", "finance", "developer", "viewer")


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A local user. `teams` and `projects` scope a developer or viewer; admin and finance see everything."""

    id: str
    name: str
    role: str  # one of ROLES
    teams: tuple[str, ...]
    password_hash: str  # "" = no password (token-only user)
    created_at: datetime
    disabled_at: datetime | None = None
    projects: tuple[str, ...] = ()  # schema v9

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
class Scope:
    """What a scoped (developer, viewer) user may read: a row whose team is one of `teams` OR whose
    project is one of `projects`. The one predicate (`allows`) and the one SQL condition (`sql`)
    every scoped read uses, so Python filters and SQL filters cannot disagree.

    `all_of` (the scope of a virtual key bound to a team and/or a project): a row must match
    every one given (team AND project); with neither given, every row matches."""

    teams: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    all_of: bool = False

    def allows(self, team: str | None, project: str | None) -> bool:
        if self.all_of:
            return (not self.teams or team in self.teams) and (not self.projects or project in self.projects)
        return (team is not None and team in self.teams) or (project is not None and project in self.projects)

    def sql(self, team_expr: str, project_expr: str) -> tuple[str, list[str]]:
        """`(team IN (?…) OR project IN (?…))` over the given column expressions, with its parameters;
        a scope of nothing matches nothing (`1 = 0`), never everything."""
        parts: list[str] = []
        params: list[str] = []
        for expr, values in ((team_expr, self.teams), (project_expr, self.projects)):
            if values:
                parts.append(f"{expr} IN ({', '.join('?' * len(values))})")
                params += list(values)
        if self.all_of:
            return (f"({' AND '.join(parts)})" if parts else "1 = 1"), params
        return (f"({' OR '.join(parts)})" if parts else "1 = 0"), params


@dataclass(frozen=True, slots=True)
class DecisionQuery:
    """Filters of the decisions log; every set filter must match. `teams`, when not None,
    keeps only decisions whose context team is one of them (an empty tuple matches nothing);
    `scope`, when not None, keeps only what it allows (team or project). `before` is the
    (ts µs, id) of the last decision of the previous page: only older ones are returned."""

    effect: str | None = None
    policy: str | None = None
    key_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    teams: tuple[str, ...] | None = None
    limit: int = 100
    scope: Scope | None = None
    before: tuple[int, str] | None = None


@dataclass(frozen=True, slots=True)
class EnvironmentQuery:
    """Filters of the API's environment listing, newest first; `scope` as in DecisionQuery."""

    states: tuple[str, ...] = ()
    team: str | None = None
    blueprint: str | None = None
    scope: Scope | None = None
    limit: int = 100
