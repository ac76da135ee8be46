"""Virtual keys: minted once, stored as SHA-256, verified with a short in-process cache."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from costplane.attribution.context import Context
from costplane.core.decision import new_id
from costplane.ledger.store import Store
from costplane.ledger.types import KeyRecord

__all__ = ["KEY_PREFIX", "KeyVerifier", "create_key", "hash_secret"]

KEY_PREFIX = "cpk_"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


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


class KeyVerifier:
    """Secret -> KeyRecord, trusting a verified key for `ttl` seconds (so revocation takes ≤ ttl)."""

    def __init__(self, store: Store, ttl: float) -> None:
        self._store = store
        self._ttl = ttl
        self._cache: dict[str, tuple[float, KeyRecord | None]] = {}

    def verify(self, secret: str) -> KeyRecord | None:
        now = time.monotonic()
        hit = self._cache.get(secret)
        if hit is not None and hit[0] > now:
            record = hit[1]
        else:
            record = self._store.key_by_hash(hash_secret(secret)) if secret.startswith(KEY_PREFIX) else None
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[secret] = (now + self._ttl, record)
        if record is None or not record.usable(datetime.now(UTC)):
            return None
        return record
