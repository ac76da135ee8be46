"""The exact-match response cache, simulated in memory (same TTL rule as the gateway's store cache).

A miss puts the key with expiry `ts + ttl`; a request with the same key before that expiry is a
hit. Used by the cache-opportunity detector and by policy replay, so both count the same hits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["CacheSimulation"]


class CacheSimulation:
    def __init__(self, ttl_seconds: int) -> None:
        self._ttl = timedelta(seconds=ttl_seconds)
        self._expires: dict[str, datetime] = {}

    def hit(self, key: str, ts: datetime) -> bool:
        """True when `key` is cached at `ts`; otherwise it is stored now (the miss fills the cache)."""
        expires = self._expires.get(key)
        if expires is not None and ts < expires:
            return True
        self._expires[key] = ts + self._ttl
        return False
