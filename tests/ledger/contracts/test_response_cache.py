"""Conformance of `ResponseCache`: exact bytes back until expiry, replace by hash, purge of expired."""

from __future__ import annotations

from datetime import timedelta

from ledger_helpers import NOW

from costplane.ledger import CachedResponse, Store


def test_response_cache(store: Store) -> None:
    entry = CachedResponse(request_hash="h", body=b'{"ok": true}\x00\xff', content_type="application/json",
                           model="gpt-4o", provider="openai", cost_nano=42, usage_json='{"input": 1}',
                           created_at=NOW, expires_at=NOW + timedelta(minutes=10))  # fmt: skip
    store.cache_put(entry)
    assert store.cache_get("h", NOW + timedelta(minutes=9)) == entry
    assert store.cache_get("h", NOW + timedelta(minutes=10)) is None  # expired
    assert store.cache_get("other", NOW) is None
    newer = CachedResponse(**{**{f: getattr(entry, f) for f in entry.__slots__}, "cost_nano": 43,
                              "expires_at": NOW + timedelta(hours=1)})  # fmt: skip
    store.cache_put(newer)
    assert store.cache_get("h", NOW + timedelta(minutes=30)) == newer

def test_purge_deletes_only_the_expired_entries(store: Store) -> None:
    def entry(h: str, minutes: int) -> CachedResponse:
        return CachedResponse(request_hash=h, body=b"{}", content_type="application/json", model="gpt-4o",
                              provider="openai", cost_nano=1, usage_json="{}", created_at=NOW,
                              expires_at=NOW + timedelta(minutes=minutes))
    for h, minutes in (("a", 1), ("b", 2), ("c", 60)):
        store.cache_put(entry(h, minutes))
    assert store.cache_purge(NOW) == 0
    assert store.cache_purge(NOW + timedelta(minutes=2)) == 2
    assert store.cache_purge(NOW + timedelta(minutes=2)) == 0
    assert store.cache_get("c", NOW + timedelta(minutes=2)) is not None
