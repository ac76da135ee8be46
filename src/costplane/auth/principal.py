"""Who is calling and what they may see or touch: one principal type for every credential.

A principal is a user (an API token or a dashboard session) or a costplane virtual key:

* users: admin and finance read everything; a developer or viewer reads a row when its team is
  one of theirs OR its project is one of theirs (`ledger.usertypes.Scope`);
* keys: a key's scope is its bound tenant dimensions (`SCOPE_DIMENSIONS`: org, team, project,
  agent): it covers a row when EVERY one it binds has the row's value — a key bound to team alpha
  sees and acts on team alpha's rows only. Other bound attributes (owner, user, tier, tags…)
  attribute what the key writes but do not narrow what it sees. A key bound to none of the
  scope dimensions is unscoped. A key's role is `key`, or
  `approver` when it carries the tag role=approver (or role=admin); key roles are distinct from
  user roles, so a key never passes a users'-API role check and a user token never passes a
  machine-API one.

`may_read(team, project)` and `where(...)` are the predicate and the SQL condition of scoped
reads; `covers(values)` checks every dimension (what a key is bound to besides team/project).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from costplane.ledger.types import KeyRecord
from costplane.ledger.usertypes import Scope, UserRecord

__all__ = ["ALL_ROLES", "APPROVER", "KEY_ROLES", "SCOPE_DIMENSIONS", "UNSCOPED_ROLES", "Principal", "Scope",
           "key_principal"]

SCOPE_DIMENSIONS: tuple[str, ...] = ("org", "team", "project", "agent")

ALL_ROLES: tuple[str, ...] = ("admin", "finance", "developer", "viewer")
UNSCOPED_ROLES: tuple[str, ...] = ("admin", "finance")
APPROVER = "approver"
KEY_ROLES: tuple[str, ...] = ("key", APPROVER)


@dataclass(frozen=True, slots=True)
class Principal:
    user: UserRecord  # for a key: a stand-in carrying the key's id, name and role
    token_id: str  # the API token (or session) id; for a key, the key id
    kind: str = "token"  # token | session | key
    key: KeyRecord | None = None

    @property
    def role(self) -> str:
        return self.user.role

    @property
    def bound(self) -> dict[str, str]:
        """A key's bound scope dimensions (its scope); {} for a user."""
        if self.key is None:
            return {}
        return {name: value for name, value in self.key.attributes.items() if name in SCOPE_DIMENSIONS and value}

    @property
    def scope(self) -> Scope | None:
        """None = reads everything (admin, finance, an unbound key); otherwise what this caller may read."""
        if self.key is not None:
            bound = self.bound
            if not bound:
                return None
            team, project = bound.get("team"), bound.get("project")
            return Scope((team,) if team else (), (project,) if project else (), all_of=True)
        return None if self.role in UNSCOPED_ROLES else Scope(self.user.teams, self.user.projects)

    @property
    def teams(self) -> tuple[str, ...] | None:
        """None = sees every team; otherwise the teams of this caller's scope."""
        scope = self.scope
        return None if scope is None else scope.teams

    @property
    def projects(self) -> tuple[str, ...] | None:
        scope = self.scope
        return None if scope is None else scope.projects

    def may_read(self, team: str | None, project: str | None) -> bool:
        """THE scoping predicate over (team, project): may this caller read a row attributed to them?"""
        scope = self.scope
        return scope is None or scope.allows(team, project)

    def may_read_team(self, team: str | None) -> bool:
        return self.may_read(team, None)

    def covers(self, values: Mapping[str, str | None]) -> bool:
        """May this caller read or act on something attributed to `values` (dimension -> value)?
        For a key every bound dimension must match; for a user, `may_read` of its team and project."""
        if self.key is not None:
            return all(values.get(name) == value for name, value in self.bound.items())
        return self.may_read(values.get("team"), values.get("project"))

    def foreign_attribution(self, values: Mapping[str, str | None]) -> str | None:
        """The first dimension of `values` this caller may not attribute to (write, book spend to), or None.

        A scoped key writes within what it binds: a bound dimension must keep the key's value, and no
        tenant level above the key's highest bound one (org > team > project > agent) may be named —
        a team key may name its projects and agents, a project key may not name a team. A scoped user
        may name only teams and projects of their scope."""
        if self.key is not None:
            bound = self.bound
            if not bound:
                return None
            top = min(SCOPE_DIMENSIONS.index(name) for name in bound)
            for level, name in enumerate(SCOPE_DIMENSIONS):
                value = values.get(name)
                if not value:
                    continue
                if (name in bound and value != bound[name]) or (name not in bound and level < top):
                    return name
            return None
        scope = self.scope
        if scope is None:
            return None
        for name, allowed in (("team", scope.teams), ("project", scope.projects)):
            value = values.get(name)
            if value is not None and value not in allowed:
                return name
        return None

    def where(self, team_expr: str, project_expr: str) -> tuple[str, list[str]]:
        """THE scoping SQL condition over two column expressions, with its parameters."""
        scope = self.scope
        return ("1 = 1", []) if scope is None else scope.sql(team_expr, project_expr)


def key_principal(key: KeyRecord) -> Principal:
    """The principal of a verified virtual key."""
    role = APPROVER if key.attributes.get("role") in ("approver", "admin") else "key"
    bound = {n: v for n, v in key.attributes.items() if n in SCOPE_DIMENSIONS and v}
    user = UserRecord(id=key.id, name=f"key:{key.name}", role=role,
                      teams=(bound["team"],) if "team" in bound else (), password_hash="",
                      created_at=key.created_at, projects=(bound["project"],) if "project" in bound else ())
    return Principal(user, key.id, "key", key)
