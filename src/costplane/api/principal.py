"""Who is calling and what they may see: the one principal type of every credential lives in
`costplane.auth.principal` (users' tokens, dashboard sessions and virtual keys); re-exported
here for the API's handlers."""

from __future__ import annotations

from costplane.auth.principal import ALL_ROLES, APPROVER, KEY_ROLES, UNSCOPED_ROLES, Principal, Scope

__all__ = ["ALL_ROLES", "APPROVER", "KEY_ROLES", "UNSCOPED_ROLES", "Principal", "Scope"]
