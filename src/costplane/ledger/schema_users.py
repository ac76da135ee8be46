"""Schema version 7: local users and their API tokens (the API and its roles).

* `users` — one row per local user: a unique name, a role (admin | finance | developer |
  viewer), the teams a developer/viewer is scoped to (JSON array), the salted password hash
  (`scrypt$n$r$p$salt$hash`, empty when the user has no password), created/disabled times.
* `api_tokens` — bearer tokens of the HTTP API: only the SHA-256 of the secret is kept
  (the secret is shown once), with a recognisable prefix, the owning user, and
  created/expires/revoked times.

Schema version 9: `users.projects` — the projects a developer/viewer is scoped to (JSON array,
`[]` for users created before v9), in addition to their teams.

Schema version 12: `credential_generation` — one row whose `generation` grows by one in the same
transaction as every revocation (a key revoked, a user disabled, an API token or session revoked).
Every process compares it with the generation its credential cache was filled at, on every
request: a revocation is refused by the very next request, on every process sharing the store.

Same conventions as every version: times are BIGINT µs (UTC), JSON is TEXT/JSONB.
"""

from __future__ import annotations

__all__ = ["V7", "V9", "V12"]

V7: tuple[str, ...] = (
    """CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    teams {json} NOT NULL,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT
)""",
    """CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
)""",
    "CREATE INDEX api_tokens_user ON api_tokens (user_id)",
)

# a NOT NULL column added to existing rows needs a default on both dialects
V9: tuple[str, ...] = ("ALTER TABLE users ADD COLUMN projects {json} NOT NULL DEFAULT '[]'",)

V12: tuple[str, ...] = (
    "CREATE TABLE credential_generation (id INTEGER PRIMARY KEY, generation BIGINT NOT NULL)",
    "INSERT INTO credential_generation (id, generation) VALUES (1, 0)",
)
