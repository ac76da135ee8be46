"""Who is calling and what they may see: roles and the team scope of developers and viewers."""

from __future__ import annotations

from dataclasses import dataclass

from costplane.ledger.usertypes import UserRecord

__all__ = ["ALL_ROLES", "Principal"]

ALL_ROLES: tuple[str, ...] = ("admin", "finance", "developer", "viewer")


@dataclass(frozen=True, slots=True)
class Principal:
    user: UserRecord
    token_id: str

    @property
    def role(self) -> str:
        return self.user.role

    @property
    def teams(self) -> tuple[str, ...] | None:
        """None = sees every team (admin, finance); otherwise the only teams this user may read."""
        return None if self.role in ("admin", "finance") else self.user.teams

    def may_read_team(self, team: str | None) -> bool:
        scope = self.teams
        return scope is None or (team is not None and team in scope)
