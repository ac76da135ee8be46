"""The response cache is purged on a schedule: expired entries are deleted (SQLite and PostgreSQL),
live ones kept, and the server runs the purge every gateway.cache_purge_interval."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from costplane.app import Application
from costplane.config import parse_config
from costplane.gateway.cachepurge import cache_purge_jobs, purge_expired
from costplane.ledger import Store
from costplane.ledger.store import CachedResponse
from costplane.server import create_server
from costplane.serving import BackgroundServer

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _entry(name: str, expires_at: datetime) -> CachedResponse:
    return CachedResponse(request_hash=name, body=b'{"id": "' + name.encode() + b'"}', content_type="application/json",
                          model="gpt-4o-mini", provider="openai", cost_nano=1_500, usage_json="{}",
                          created_at=expires_at - timedelta(hours=1), expires_at=expires_at)


def _fill(store: Store) -> None:
    store.cache_put(_entry("old", NOW - timedelta(minutes=5)))
    store.cache_put(_entry("edge", NOW))  # expires exactly now: no longer served, so purged
    store.cache_put(_entry("live", NOW + timedelta(seconds=1)))


def _rows(store: Store) -> set[str]:
    far_past = NOW - timedelta(days=365)  # cache_get serves only unexpired rows: ask as of long ago
    return {name for name in ("old", "edge", "live") if store.cache_get(name, far_past) is not None}


def test_expired_entries_are_deleted_and_live_ones_kept(store: Store) -> None:
    _fill(store)
    assert _rows(store) == {"old", "edge", "live"}
    assert purge_expired(store, NOW) == 2
    assert _rows(store) == {"live"}
    assert store.cache_get("live", NOW) is not None
    assert purge_expired(store, NOW) == 0
    assert purge_expired(store, NOW + timedelta(seconds=1)) == 1 and _rows(store) == set()


def test_purge_needs_an_aware_time(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        purge_expired(store, NOW.replace(tzinfo=None))


def test_the_job_runs_every_configured_interval(tmp_path: Path) -> None:
    config = parse_config({"store": f"sqlite:///{tmp_path}/a.db", "gateway": {"cache_purge_interval": "90s"}})
    application = Application(config)
    try:
        _fill(application.store)
        [(seconds, job)] = cache_purge_jobs(application, clock=lambda: NOW)
        assert seconds == 90.0
        assert asyncio.run(job()) == 2  # type: ignore[arg-type]
        assert _rows(application.store) == {"live"}
    finally:
        application.close()


def test_the_server_purges_on_its_schedule(tmp_path: Path) -> None:
    config = parse_config({"store": f"sqlite:///{tmp_path}/s.db", "gateway": {"cache_purge_interval": "1s"}})
    application = Application(config)
    try:
        now = datetime.now(UTC)
        application.store.cache_put(_entry("old", now - timedelta(minutes=1)))
        application.store.cache_put(_entry("live", now + timedelta(hours=1)))
        with BackgroundServer(create_server(application)):
            deadline = time.monotonic() + 20  # a bound on waiting, not an assertion on timing
            while application.store.cache_get("old", now - timedelta(hours=2)) is not None:
                assert time.monotonic() < deadline, "the expired entry was never purged"
                time.sleep(0.1)
        assert application.store.cache_get("live", now) is not None
    finally:
        application.close()
