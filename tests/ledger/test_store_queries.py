"""Queries, keys, cache, decisions, migrations and URLs — on both stores."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ledger_helpers import NOW, decision, event

from costplane.attribution.context import Context
from costplane.ledger import (
    CachedResponse,
    KeyRecord,
    PostgresStore,
    SqliteStore,
    Store,
    StoreError,
    StoreUnavailable,
    open_store,
)
from costplane.ledger.migrations import LATEST
from costplane.pricing.types import TokenUsage


def _seed(store: Store) -> None:
    rows = [  # (hour offset, team, user, model, cost)
        (0, "ml", "ann", "gpt-4o", 100),
        (0, "ml", "bob", "gpt-4o-mini", 10),
        (1, "ml", "ann", "gpt-4o", 200),
        (1, "web", None, "gpt-4o", 50),
        (25, "web", "cid", "claude", 7),
    ]
    for i, (hours, team, user, model, cost) in enumerate(rows):
        ctx = Context(team=team, user=user, run=f"run-{i % 2}", tags={"env": "prod"}, key_id="k1")
        store.record_event(event(cost, eid=f"e{i}", ts=NOW + timedelta(hours=hours, minutes=5), ctx=ctx,
                                 model=model, usage=TokenUsage(10, 5), saved_nano=i))  # fmt: skip


def test_spend_breakdowns(store: Store) -> None:
    _seed(store)
    (total,) = store.spend()
    assert (total.cost_nano, total.events, total.input_tokens, total.output_tokens) == (367, 5, 50, 25)
    assert total.saved_nano == 0 + 1 + 2 + 3 + 4 and total.group == {} and total.bucket is None
    by_team = store.spend(group_by=["team"])
    assert [(r.group["team"], r.cost_nano, r.events) for r in by_team] == [("ml", 310, 3), ("web", 57, 2)]
    by_user = store.spend(group_by=["user"], where={"team": "web"})
    assert {r.group["user"]: r.cost_nano for r in by_user} == {None: 50, "cid": 7}
    hourly = store.spend(group_by=["model"], bucket="hour", until=NOW + timedelta(hours=2))
    assert [(r.bucket, r.group["model"], r.cost_nano) for r in hourly] == [
        (NOW, "gpt-4o", 100),
        (NOW, "gpt-4o-mini", 10),
        (NOW + timedelta(hours=1), "gpt-4o", 250),
    ]
    daily = store.spend(bucket="day")
    day0 = NOW.replace(hour=0)
    assert [(r.bucket, r.cost_nano) for r in daily] == [(day0, 360), (day0 + timedelta(days=1), 7)]
    since = store.spend(group_by=["key", "provider"], since=NOW + timedelta(hours=1))
    assert [(r.group, r.cost_nano) for r in since] == [({"key": "k1", "provider": "openai"}, 257)]
    filtered = store.spend(where={"model": "gpt-4o", "user": "ann", "kind": "llm", "status": "ok"})
    assert filtered[0].cost_nano == 300
    assert store.spend(where={"team": "nobody"}) == []


def test_spend_rejects_unknown_names(store: Store) -> None:
    with pytest.raises(ValueError, match="'team; DROP TABLE cost_events'"):
        store.spend(group_by=["team; DROP TABLE cost_events"])
    with pytest.raises(ValueError, match="'colour'"):
        store.spend(where={"colour": "red"})
    with pytest.raises(ValueError, match="'week'"):
        store.spend(bucket="week")


def test_events_round_trip_and_listing(store: Store) -> None:
    ctx = Context(org="o", team="t", project="p", user="u", owner="ow", tier="prod", pipeline="pl",
                  run="r", experiment="x", agent="a", step="s", tool="tl", trace="tr", outcome="oc",
                  tags={"cost_center": "cc-1"}, key_id="key-1")  # fmt: skip
    ev = event(123_456_789, eid="full", ctx=ctx, kind="llm", endpoint="chat.completions",
               usage=TokenUsage(100, 50, 20, 10, 5), unit_prices={"input": "2.5", "output": "10"},
               saved_nano=9, decision_id="d1", latency_ms=321, status="cut", price_flagged=True,
               request_hash="h1", requested_model="gpt-4o-big", ts=NOW)  # fmt: skip
    assert store.record_event(ev)
    assert store.get_event("full") == ev
    assert store.get_event("missing") is None
    _seed(store)
    listed = store.list_events(limit=3)
    assert [e.id for e in listed] == ["e4", "e3", "e2"]  # newest first
    assert [e.id for e in store.list_events(since=NOW + timedelta(hours=2))] == ["e4"]
    assert store.count_events() == 6


def test_count_recent_requests(store: Store) -> None:
    for i in range(4):
        ts = NOW + timedelta(seconds=10 * i)
        store.record_event(event(1, ts=ts, ctx=Context(run="loop"), request_hash="same"))
    store.record_event(event(1, ctx=Context(run="other"), request_hash="same"))
    assert store.count_recent_requests("loop", "same", NOW) == 4
    assert store.count_recent_requests("loop", "same", NOW + timedelta(seconds=15)) == 2
    assert store.count_recent_requests("loop", "different", NOW) == 0


def test_decisions(store: Store) -> None:
    for i, effect in enumerate(["allow", "deny", "route", "deny"]):
        store.record_decision(decision(f"d{i}", effect=effect, ts=NOW + timedelta(seconds=i),
                                       ctx=Context(team="ml", run="r1", tags={"a": "b"})))  # fmt: skip
    store.record_decision(decision("d0", effect="allow"))  # same id again: ignored
    assert [d.id for d in store.list_decisions()] == ["d3", "d2", "d1", "d0"]
    assert [d.id for d in store.list_decisions(effect="deny")] == ["d3", "d1"]
    assert [d.id for d in store.list_decisions(since=NOW + timedelta(seconds=2), limit=1)] == ["d3"]
    got = store.list_decisions(effect="route")[0]
    assert got == decision("d2", effect="route", ts=NOW + timedelta(seconds=2),
                           ctx=Context(team="ml", run="r1", tags={"a": "b"}))  # fmt: skip


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


def test_keys(store: Store) -> None:
    key = KeyRecord(id="k1", secret_hash="a" * 64, prefix="cp_abc", name="ml team",
                    attributes={"team": "ml", "cost_center": "cc1"}, created_at=NOW)  # fmt: skip
    store.create_key(key)
    other = KeyRecord(id="k2", secret_hash="b" * 64, prefix="cp_def", name="web", attributes={},
                      created_at=NOW + timedelta(seconds=1), expires_at=NOW + timedelta(days=1))  # fmt: skip
    store.create_key(other)
    assert store.key_by_hash("a" * 64) == key
    assert store.key_by_hash("c" * 64) is None
    assert store.get_key("k2") == other
    assert [k.id for k in store.list_keys()] == ["k1", "k2"]
    with pytest.raises(StoreError):
        store.create_key(key)
    assert store.revoke_key("k1", NOW + timedelta(hours=1)) is True
    assert store.revoke_key("k1", NOW + timedelta(hours=2)) is False
    assert store.revoke_key("nope", NOW) is False
    revoked = store.get_key("k1")
    assert revoked is not None and revoked.revoked_at == NOW + timedelta(hours=1)
    assert not revoked.usable(NOW + timedelta(hours=3))


def test_stats_and_schema_version(store: Store) -> None:
    _seed(store)
    store.record_decision(decision("d1"))
    stats = store.stats()
    assert stats["events"] == 5 and stats["decisions"] == 1 and stats["open_reservations"] == 0
    assert stats["schema_version"] == LATEST == store.schema_version()


def test_migrate_is_idempotent_and_upgrades_v1(store_url: Callable[[], str]) -> None:
    store = open_store(store_url())
    try:
        assert store.schema_version() == 0
        assert isinstance(store, SqliteStore | PostgresStore)
        store.migrate(target=1)
        assert store.schema_version() == 1
        store.record_event(event(5, eid="old"))  # data written under v1 survives the upgrade
        store.migrate()
        store.migrate()
        assert store.schema_version() == LATEST
        assert store.get_event("old") is not None
        assert store.stats()["events"] == 1
    finally:
        store.close()


def test_naive_datetimes_are_utc(store: Store) -> None:
    store.record_event(event(1, eid="naive", ts=datetime(2025, 1, 1, 12, 0)))
    got = store.get_event("naive")
    assert got is not None and got.ts == datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


# -- URLs and availability (dialect specific) ---------------------------------------------


def test_open_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rel = open_store("sqlite:///data/rel.db?synchronous=FULL&busy_timeout=250")
    assert isinstance(rel, SqliteStore)
    assert rel.path == Path("data/rel.db") and rel.synchronous == "FULL" and rel.busy_timeout_ms == 250
    rel.migrate()
    assert (tmp_path / "data" / "rel.db").exists()
    rel.close()
    absolute = open_store(f"sqlite:///{tmp_path}/abs.db")
    assert isinstance(absolute, SqliteStore) and absolute.path == tmp_path / "abs.db"
    pg = open_store("postgres://u:secret@db.example:5432/x?schema=cp&sslmode=disable")
    assert isinstance(pg, PostgresStore) and pg.schema == "cp" and "secret" not in pg.safe_url
    for bad in ("mysql://root:hunter2@x/db", "costplane.db", "sqlite://host/x.db", "sqlite:///:memory:",
                "sqlite:///x.db?journal=off", "sqlite:///x.db?synchronous=SOMETIMES"):  # fmt: skip
        with pytest.raises(ValueError) as info:
            open_store(bad)
        assert "hunter2" not in str(info.value)


def test_unreachable_postgres_is_unavailable_without_credentials() -> None:
    store = open_store("postgresql://cp:s3cret@127.0.0.1:1/nothing?connect_timeout=2")
    with pytest.raises(StoreUnavailable) as info:
        store.count_events()
    assert "s3cret" not in str(info.value) and "127.0.0.1" in str(info.value)


def test_locked_sqlite_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    store = SqliteStore(path, busy_timeout_ms=100)
    store.migrate()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable, match="busy_timeout=100"):
            store.record_event(event(1))
        assert store.count_events() == 0  # WAL: readers are not blocked
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.record_event(event(1))
    store.close()
