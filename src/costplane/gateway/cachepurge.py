"""The scheduled purge of the gateway's exact-match response cache.

An entry is never served after its `expires_at` (`cache_get` filters on it), but without a purge
the rows would stay in `response_cache` forever. Every `gateway.cache_purge_interval` (10m by
default) the server deletes the entries expired by then, on SQLite and PostgreSQL alike, off the
event loop through the store's executor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from costplane.app import Application
from costplane.ledger.store import Store

__all__ = ["cache_purge_jobs", "purge_expired"]

log = logging.getLogger("costplane.gateway.cache")


def purge_expired(store: Store, now: datetime) -> int:
    """Delete the response cache entries expired at `now` (an aware datetime); returns how many."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    purged = store.cache_purge(now)
    if purged:
        log.info("purged %d expired response cache entries", purged)
    return purged


def cache_purge_jobs(application: Application, clock: Callable[[], datetime] | None = None
                     ) -> list[tuple[float, Callable[[], Awaitable[object]]]]:
    """The (seconds, job) the server runs on its schedule: one purge every gateway.cache_purge_interval."""
    now = clock or (lambda: datetime.now(UTC))

    async def purge() -> object:
        return await asyncio.to_thread(purge_expired, application.store, now())

    return [(float(application.config.gateway.cache_purge_interval), purge)]
