"""Contracts of the product's configuration-like records: credentials (virtual keys, users, API
tokens), governed environments, the response cache and alert claims.

Atomicity each requires: a revocation raises `credentials_generation` in the revoking transaction
(caches of credentials compare it) and returns no sooner than `CREDENTIAL_TRUST_SECONDS` after its
commit; `transition_environment` is a compare-and-set of the state
with its transition and decision in one transaction; `claim_alert` returns True to exactly one
caller per dedup key across every process and replica sharing the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from costplane.ledger.envtypes import EnvironmentRecord, EnvTransition
from costplane.ledger.storetypes import CachedResponse
from costplane.ledger.types import DecisionRecord, KeyRecord
from costplane.ledger.usertypes import ApiTokenRecord, EnvironmentQuery, UserRecord

__all__ = ["CREDENTIAL_TRUST_SECONDS", "AlertClaims", "Credentials", "Environments", "ResponseCache"]

#: How long a credential cache may go on using a generation it read, counted from the moment that
#: read STARTED, without reading it again. Every revocation returns only once this long has passed
#: since its commit, so any read a cache still relies on after that started after the commit and
#: saw it: once a revocation has returned, no process sharing the store accepts what it revoked.
#: One constant for every process of a version (readers and revokers must agree on it).
CREDENTIAL_TRUST_SECONDS = 0.2


class Credentials(Protocol):
    """Virtual keys (gateway callers), users and their API tokens (API callers)."""

    def create_key(self, key: KeyRecord) -> None: ...

    def key_by_hash(self, secret_hash: str) -> KeyRecord | None:
        """The key whose secret hashes to `secret_hash`, revoked or not (the caller checks)."""

    def get_key(self, key_id: str) -> KeyRecord | None: ...

    def list_keys(self) -> list[KeyRecord]: ...

    def revoke_key(self, key_id: str, now: datetime) -> bool:
        """Revoke an active key; False when unknown or already revoked. A revocation (of a key,
        a user or a token) returns `CREDENTIAL_TRUST_SECONDS` after its commit, not before."""

    def create_user(self, user: UserRecord) -> None: ...

    def get_user(self, user_id: str) -> UserRecord | None: ...

    def user_by_name(self, name: str) -> UserRecord | None: ...

    def list_users(self) -> list[UserRecord]: ...

    def disable_user(self, user_id: str, now: datetime) -> bool: ...

    def create_api_token(self, token: ApiTokenRecord) -> None: ...

    def api_token_by_hash(self, secret_hash: str) -> ApiTokenRecord | None: ...

    def list_api_tokens(self, user_id: str) -> list[ApiTokenRecord]: ...

    def revoke_api_token(self, token_id: str, now: datetime) -> bool: ...

    def credentials_generation(self) -> int:
        """Grows with every revocation (key, user, API token, session), in the revoking transaction.
        A value read may be relied on for `CREDENTIAL_TRUST_SECONDS` from the start of its read."""


class Environments(Protocol):
    """Governed environments (sandboxes, GPU boxes) and their lifecycle transitions."""

    def create_environment(self, env: EnvironmentRecord, decision: DecisionRecord | None = None) -> None: ...

    def get_environment(self, env_id: str) -> EnvironmentRecord | None: ...

    def list_environments(self, *, states: Sequence[str] = (), limit: int = 1000) -> list[EnvironmentRecord]: ...

    def due_environments(self, now: datetime, limit: int = 1000) -> list[EnvironmentRecord]:
        """Open environments whose next_action_at <= now, most overdue first."""

    def update_environment(self, env_id: str, changes: Mapping[str, Any], *,
                           states: Sequence[str] = ()) -> bool:
        """Change some columns (never the state), only while the state is one of `states` when given;
        False when nothing matched."""

    def transition_environment(self, env_id: str, from_states: Sequence[str], to_state: str, *, ts: datetime,
                               reason: str, decision: DecisionRecord | None = None,
                               changes: Mapping[str, Any] | None = None) -> EnvironmentRecord | None:
        """Compare-and-set the state, apply changes, record the transition and decision atomically."""

    def environment_transitions(self, env_id: str) -> list[EnvTransition]: ...

    def query_environments(self, query: EnvironmentQuery) -> list[EnvironmentRecord]:
        """Environments matching every set filter (states, team, blueprint, scope), newest first."""


class ResponseCache(Protocol):
    """Exact-match cached responses (a hit is served without an upstream call)."""

    def cache_get(self, request_hash: str, now: datetime) -> CachedResponse | None:
        """The entry for the hash, unless it expired at `now`."""

    def cache_put(self, entry: CachedResponse) -> None:
        """Insert or replace the entry for its hash."""

    def cache_purge(self, now: datetime) -> int:
        """Delete the entries expired at `now`; returns how many (the scheduled cache purge)."""


class AlertClaims(Protocol):
    """Deduplication of alerts across replicas: whoever claims a key first sends the alert."""

    def claim_alert(self, dedup_key: str, kind: str, subject: str, now: datetime) -> bool:
        """Record that the alert `dedup_key` was raised; True only for the first caller (any replica)."""
