"""Authentication and authorization of every HTTP surface: one principal type (`Principal`:
a user's API token, a dashboard session or a virtual key, with role and scope) and one
authenticator per application with a revocation-exact cache (`Authenticator`, see docs/api.md)."""

from costplane.auth.authenticator import (
    KEY_PREFIX,
    TOKEN_PREFIX,
    Authenticator,
    hash_secret,
    request_secret,
)
from costplane.auth.principal import ALL_ROLES, APPROVER, KEY_ROLES, UNSCOPED_ROLES, Principal, key_principal

__all__ = [
    "ALL_ROLES",
    "APPROVER",
    "KEY_PREFIX",
    "KEY_ROLES",
    "TOKEN_PREFIX",
    "UNSCOPED_ROLES",
    "Authenticator",
    "Principal",
    "hash_secret",
    "key_principal",
    "request_secret",
]
