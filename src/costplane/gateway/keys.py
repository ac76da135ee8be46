"""Virtual keys: minted once (the secret shown once), stored as SHA-256; verified by the application's
authenticator (`costplane.auth`: one cache for keys, API tokens and sessions; a revocation is refused by the
very next request on every process sharing the store)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime

from costplane.attribution.context import Context
from costplane.auth.authenticator import KEY_PREFIX, hash_secret
from costplane.core.decision import new_id
from costplane.ledger.store import Store
from costplane.ledger.types import KeyRecord

__all__ = ["KEY_PREFIX", "create_key", "hash_secret"]


def create_key(
    store: Store, name: str, attributes: Mapping[str, str], expires_at: datetime | None = None
) -> tuple[str, KeyRecord]:
    """Mint a key bound to `attributes`; returns the secret (shown once) and the stored record."""
    bound = Context.from_mapping(attributes, source="key")  # validates every value
    clean = {**bound.dimensions(), **bound.tags}
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    record = KeyRecord(
        id=new_id("key"), secret_hash=hash_secret(secret), prefix=secret[:10], name=name,
        attributes=clean, created_at=datetime.now(UTC), expires_at=expires_at,
    )
    store.create_key(record)
    return secret, record
