"""Who is calling and what they may see: roles and the team/project scope of developers and viewers.

The scoping rule, in one place: admin and finance read everything; a developer or viewer reads
an event, decision, environment or run when its team is one of theirs OR its project is one of
theirs. `Principal.may_read` is the predicate (Python filters) and `Principal.where` the SQL
condition (store queries); both delegate to `ledger.usertypes.Scope`, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from costplane.ledger.usertypes import Scope, UserRecord

__all__ = ["ALL_ROLES", "Principal", "Scope"]

ALL_ROLES: tuple[str, ...] = ("admin", "finance", "developer", "viewer")
UNSCOPED_ROLES: tuple[str, ...] = ("admin", "finance")


@dataclass(frozen=True, slots=True)
class Principal:
    user: UserRecord
    token_id: str

    @property
    def role(self) -> str:
        return self.user.role

    @property
    def scope(self) -> Scope | None:
        """None = reads everything (admin, finance); otherwise the only teams/projects this user may read."""
        return None if self.role in UNSCOPED_ROLES else Scope(self.user.teams, self.user.projects)

    @property
    def teams(self) -> tuple[str, ...] | None:
        """None = sees every team (admin, finance); otherwise the teams of this user's scope."""
        scope = self.scope
        return None if scope is None else scope.teams

    @property
    def projects(self) -> tuple[str, ...] | None:
        scope = self.scope
        return None if scope is None else scope.projects

    def may_read(self, team: str | None, project: str | None) -> bool:
        """THE scoping predicate: may this caller read a row attributed to (team, project)?"""
        scope = self.scope
        return scope is None or scope.allows(team, project)

    def may_read_team(self, team: str | None) -> bool:
        return self.may_read(team, None)

    def where(self, team_expr: str, project_expr: str) -> tuple[str, list[str]]:
        """THE scoping SQL condition over two column expressions, with its parameters."""
        scope = self.scope
        return ("1 = 1", []) if scope is None else scope.sql(team_expr, project_expr)
