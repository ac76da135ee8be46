"""Schema v8 spend rollups: triggers keep them exact on every write path, the migration and
`rebuild_rollups` backfill them, and `spend()` routed through them equals the raw scan."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from ledger_helpers import claim, decision, event, reserve

from costplane.attribution.context import Context
from costplane.ledger import Store, open_store
from costplane.ledger.rollups import DAY_US, HOUR_US, ROLLUP_DIMENSIONS, Part, plan, routable

T0 = datetime(2026, 3, 28, 0, 0, tzinfo=UTC)  # spans the EU DST switch; irrelevant to UTC buckets
_VALUES = {"org": ["acme"], "team": ["alpha", "beta", "gamma"], "project": ["p1", "p2"], "user": ["ann", "bob"],
           "owner": ["olga"], "tier": ["prod", "experiment"], "pipeline": ["etl", "rag"],
           "agent": ["a1", "a2", "a3"], "run": ["r1", "r2", "r3", "r4"], "step": ["s1", "s2"]}  # fmt: skip


def _random_event(rng: random.Random, i: int) -> object:
    dims = {name: rng.choice(values) for name, values in _VALUES.items() if rng.random() < 0.75}
    ts = T0 + timedelta(microseconds=rng.randrange(4 * DAY_US))
    if rng.random() < 0.1:  # exactly on a bucket boundary
        ts = T0 + timedelta(hours=rng.randrange(96))
    return event(rng.randrange(0, 5_000_000), eid=f"e{i}", ts=ts,
                 ctx=Context(**dims, key_id=rng.choice(["k1", "k2", None])),
                 model=rng.choice(["gpt-4o", "gpt-4o-mini", "claude"]), provider=rng.choice(["openai", "anthropic"]),
                 kind=rng.choice(["llm", "embedding"]), status=rng.choice(["ok", "error"]),
                 saved_nano=rng.randrange(0, 1000),
                 usage=_usage(rng.randrange(0, 5000), rng.randrange(0, 900)))  # fmt: skip


def _usage(inp: int, out: int) -> object:
    from costplane.pricing.types import TokenUsage

    return TokenUsage(input_tokens=inp, output_tokens=out)


def _instant(rng: random.Random) -> datetime | None:
    roll = rng.random()
    if roll < 0.2:
        return None
    if roll < 0.4:  # day-aligned
        return T0 + timedelta(days=rng.randrange(-1, 5))
    if roll < 0.6:  # hour-aligned
        return T0 + timedelta(hours=rng.randrange(-2, 98))
    return T0 + timedelta(microseconds=rng.randrange(-HOUR_US, 4 * DAY_US + HOUR_US))


def _both(store: Store, **kw: object) -> tuple[object, object]:
    store.use_rollups = True  # type: ignore[attr-defined]
    routed = store.spend(**kw)  # type: ignore[arg-type]
    store.use_rollups = False  # type: ignore[attr-defined]
    raw = store.spend(**kw)  # type: ignore[arg-type]
    store.use_rollups = True  # type: ignore[attr-defined]
    return routed, raw


def test_routed_spend_equals_raw_scan(store: Store) -> None:
    """Property: random events, random group_by/where/since/until/bucket — routed == raw, exactly."""
    rng = random.Random(20261122)
    for i in range(600):
        store.record_event(_random_event(rng, i))  # type: ignore[arg-type]
    names = [*ROLLUP_DIMENSIONS, "run", "step"]
    checked = nonempty = 0
    for _ in range(250):
        group_by = rng.sample(names, rng.choice([0, 0, 1, 1, 2, 3]))
        where = {n: rng.choice(_VALUES.get(n, ["gpt-4o", "openai", "llm", "ok", "k1"]))
                 for n in rng.sample([n for n in names if n in _VALUES or n in ("model", "key")],
                                     rng.choice([0, 0, 1, 2]))}  # fmt: skip
        if "key" in where:
            where["key"] = "k1"
        if "model" in where:
            where["model"] = "gpt-4o"
        since, until = _instant(rng), _instant(rng)
        bucket = rng.choice([None, None, "hour", "day"])
        routed, raw = _both(store, group_by=group_by, where=where, since=since, until=until, bucket=bucket)
        assert routed == raw, (group_by, where, since, until, bucket)
        checked += 1
        nonempty += bool(raw)
    assert checked == 250 and nonempty > 150  # the loop really compared data, not empty lists
    for _ in range(30):  # spend_windows: every window equals its own raw scan
        group_by = rng.sample(names, rng.choice([0, 1, 2]))
        starts = sorted(T0 + timedelta(microseconds=rng.randrange(-HOUR_US, 4 * DAY_US)) for _ in range(6))
        windows = [(a, a + timedelta(microseconds=rng.randrange(1, 2 * DAY_US))) for a in starts]
        batched = store.spend_windows(windows, group_by=group_by)
        store.use_rollups = False  # type: ignore[attr-defined]
        for (since, until), rows in zip(windows, batched, strict=True):
            raw = store.spend(group_by=group_by, since=since, until=until)
            assert sorted(rows, key=repr) == sorted(raw, key=repr), (group_by, since, until)
        store.use_rollups = True  # type: ignore[attr-defined]


def test_triggers_follow_settle_and_record_event(store: Store) -> None:
    """Every write path lands in the rollups in the same transaction (PostgreSQL: the PL/pgSQL functions)."""
    c = claim("team", 1000, limit_nano=10_000)
    res, ok = reserve(store, [c])
    assert ok.ok
    store.settle(res.id, event(700, eid="s", rid=res.id, ts=T0 + timedelta(minutes=5), ctx=Context(team="alpha")))
    store.settle(res.id, event(700, eid="s", rid=res.id, ts=T0 + timedelta(minutes=5), ctx=Context(team="alpha")))
    assert store.record_event(event(300, eid="x", ts=T0 + timedelta(hours=30), ctx=Context(team="beta")), [c])
    assert not store.record_event(event(300, eid="x", ts=T0 + timedelta(hours=30), ctx=Context(team="beta")))
    by_team = {r.group["team"]: (r.cost_nano, r.events) for r in store.spend(group_by=["team"])}
    assert by_team == {"alpha": (700, 1), "beta": (300, 1)}  # duplicates (ON CONFLICT DO NOTHING) not counted
    daily = [(r.bucket, r.cost_nano) for r in store.spend(bucket="day")]
    assert daily == [(T0, 700), (T0 + timedelta(days=1), 300)]


def test_migration_backfills_and_rebuild_repairs(store_url: Callable[[], str]) -> None:
    store = open_store(store_url())
    try:
        store.migrate(target=7)  # type: ignore[call-arg]
        rng = random.Random(7)
        for i in range(120):
            store.record_event(_random_event(rng, i))  # type: ignore[arg-type]
        store.use_rollups = True  # type: ignore[attr-defined]
        raw = store.spend(group_by=["team", "model"], bucket="hour")  # no rollup tables yet: raw scan
        with pytest.raises(Exception, match="schema version 8"):
            store.rebuild_rollups()
        store.migrate()
        assert store.schema_version() >= 8
        store._has_rollups = False  # type: ignore[attr-defined]  # a fresh process would look again
        assert store.spend(group_by=["team", "model"], bucket="hour") == raw
        counts = store.rebuild_rollups()
        assert counts["spend_hourly"] >= counts["spend_daily"] > 0
        routed, fresh = _both(store, group_by=["agent"], bucket="day")
        assert routed == fresh and routed
    finally:
        store.close()


def test_rebuild_repairs_drifted_rollups_and_triggers_follow_update_delete(store: Store) -> None:
    for i in range(20):
        store.record_event(event(100 + i, eid=f"e{i}", ts=T0 + timedelta(minutes=50 * i),
                                 ctx=Context(team="alpha" if i % 2 else "beta")))  # fmt: skip
    tx_write = store._write  # type: ignore[attr-defined]
    tx_write(lambda tx: tx.exec("UPDATE spend_daily SET cost_nano = cost_nano + 5"))  # simulated drift
    routed, raw = _both(store, group_by=["team"])
    assert routed != raw
    store.rebuild_rollups()
    routed, raw = _both(store, group_by=["team"])
    assert routed == raw
    # nothing UPDATEs or DELETEs events today; if a repair does, the rollups follow
    tx_write(lambda tx: tx.exec("UPDATE cost_events SET team = 'gamma', cost_nano = 1 WHERE id = 'e1'"))
    tx_write(lambda tx: tx.exec("DELETE FROM cost_events WHERE id = 'e2'"))
    routed, raw = _both(store, group_by=["team"], bucket="hour")
    assert routed == raw
    assert {r.group["team"] for r in raw} == {"alpha", "beta", "gamma"}


def test_null_dimensions_come_back_as_none(store: Store) -> None:
    store.record_event(event(5, ts=T0, ctx=Context()))
    store.record_event(event(7, ts=T0, ctx=Context(team="alpha", key_id="k1")))
    rows = store.spend(group_by=["team", "key"])
    assert [(r.group, r.cost_nano) for r in rows] == [({"team": "alpha", "key": "k1"}, 7),
                                                        ({"team": None, "key": None}, 5)]
    assert store.spend(where={"team": ""}) == []  # '' is a raw-scan filter, never the rollups' NULL


def test_plan_counts_every_instant_once() -> None:
    """The signed parts add up to [since, until): +1 inside, 0 outside; subtractions stay inside
    one requested bucket; rollup parts are whole buckets; at most half a bucket of fine rows per edge."""
    rng = random.Random(1)
    base = 1_700_000_000_000_000 // DAY_US * DAY_US
    for _ in range(3000):
        since = rng.choice([None, base + rng.randrange(-3 * DAY_US, 3 * DAY_US)])
        until = rng.choice([None, base + rng.randrange(-3 * DAY_US, 6 * DAY_US)])
        if rng.random() < 0.3 and since is not None:
            since = since // HOUR_US * HOUR_US
        if rng.random() < 0.2 and since is not None:
            until = since + rng.randrange(1, 2 * HOUR_US)
        bucket = rng.choice([None, "hour", "day"])
        parts = plan(since, until, bucket)
        for p in parts:
            width = {"daily": DAY_US, "hourly": HOUR_US}.get(p.source)
            if width:  # rollup parts are whole buckets
                assert (p.lo is None or p.lo % width == 0) and (p.hi is None or p.hi % width == 0)
            if bucket == "hour":
                assert p.source != "daily"
            if p.sign < 0 and bucket:
                assert p.lo is not None and p.hi is not None
                size = HOUR_US if bucket == "hour" else DAY_US
                assert p.lo // size == (p.hi - 1) // size  # a correction never crosses a bucket
            if p.source == "raw" and p.lo is not None and p.hi is not None and since is not None and until is not None:
                assert p.hi - p.lo <= HOUR_US // 2 or p.hi - p.lo == until - since
        lo = since if since is not None else base - 10 * DAY_US
        hi = until if until is not None else base + 10 * DAY_US
        low, high = min(lo, hi), max(lo, hi)
        probes = [rng.randrange(low - DAY_US, high + DAY_US) for _ in range(20)] + [lo, hi - 1, hi]
        for t in probes:
            net = sum(p.sign for p in parts if (p.lo is None or p.lo <= t) and (p.hi is None or t < p.hi))
            inside = (since is None or since <= t) and (until is None or t < until)
            assert net == (1 if inside else 0), (since, until, bucket, t, parts)
    assert plan(None, None, None) == [Part("daily", None, None)]
    assert plan(None, None, "hour") == [Part("hourly", None, None)]
    now = base + 5 * DAY_US + 20 * HOUR_US + 50 * 60_000_000  # 20:50: the rest of today is subtracted
    assert plan(base, now, None) == [Part("raw", now, now + 10 * 60_000_000, -1),
                                     Part("hourly", now + 10 * 60_000_000, base + 6 * DAY_US, -1),
                                     Part("daily", base, base + 6 * DAY_US)]


def test_routable_names() -> None:
    assert routable(["team", "model", "key"], {"agent": "a"})
    assert not routable(["run"], {})
    assert not routable([], {"trace": "t"})
    assert not routable(["team"], {"team": ""})


def _rollup_rows(store: Store) -> dict[str, list[tuple[object, ...]]]:
    """Both tables' rows, less those a DELETE or UPDATE trigger left at zero events (a rebuild has none)."""
    read = store._read  # type: ignore[attr-defined]
    return {table: read(lambda tx, t=table: [tuple(r) for r in tx.all(f"SELECT * FROM {t} WHERE events <> 0"
                                                                         " ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"
                                                                         " 11, 12, 13, 14")])
            for table in ("spend_hourly", "spend_daily")}  # fmt: skip


def _marked(store: Store) -> int:
    return int(store._read(lambda tx: tx.one("SELECT COUNT(*) FROM cost_events WHERE rolled_up")[0]))  # type: ignore[attr-defined]


def test_batch_writers_add_what_the_trigger_would(store: Store) -> None:
    """record_spend and the lease writer insert marked rows and add their batch's sums themselves
    (schema v17): the rollups equal a rebuild from the events, whatever mix of single writes,
    batches, replayed duplicates, pre-1970 instants and later deletes and updates wrote them."""
    from costplane.ledger.lease_store import LeasedRecord

    rng = random.Random(20261207)
    events = [_random_event(rng, i) for i in range(900)]
    events.append(event(11, eid="before-1970", ts=datetime(1969, 12, 31, 23, 30, 5, tzinfo=UTC),
                        ctx=Context(team="alpha")))  # fmt: skip
    rng.shuffle(events)
    single, spent, leased = events[:200], events[200:550], events[550:]
    for e in single:
        store.record_event(e)  # type: ignore[arg-type]
    for start in range(0, len(spent), 37):  # every batch also replays two events already stored
        batch = [*spent[start:start + 37], *rng.sample(events[:start + 200], 2)]
        new, _ = store.record_spend(batch, [()] * len(batch), [None] * len(batch))  # type: ignore[arg-type]
        assert sum(new) == len(spent[start:start + 37])
    for start in range(0, len(leased), 50):
        part = leased[start:start + 50]
        records = [LeasedRecord(decision(), (), (), e) for e in part]  # type: ignore[arg-type]
        store.apply_leased(records)  # type: ignore[attr-defined]
        store.apply_leased(records[:5])  # type: ignore[attr-defined]  # a replayed journal: skipped
    assert _marked(store) == len(spent) + len(leased)  # the batches really took the batch path
    written = _rollup_rows(store)
    assert sum(row[-3] for row in written["spend_hourly"]) == len(events)  # type: ignore[misc]
    store.rebuild_rollups()
    assert _rollup_rows(store) == written
    # DELETE and UPDATE triggers treat marked rows like any other
    write = store._write  # type: ignore[attr-defined]
    write(lambda tx: tx.exec("DELETE FROM cost_events WHERE id = ?", (leased[0].id,)))  # type: ignore[attr-defined]
    write(lambda tx: tx.exec("UPDATE cost_events SET team = 'omega', cost_nano = 3 WHERE id = ?",
                             (spent[0].id,)))  # type: ignore[attr-defined]  # fmt: skip
    after = _rollup_rows(store)
    store.rebuild_rollups()
    assert _rollup_rows(store) == after != written
    routed, raw = _both(store, group_by=["team", "model"], bucket="hour")
    assert routed == raw and any(r.group["team"] == "omega" for r in raw)


def test_batches_before_and_after_the_batch_marker(store_url: Callable[[], str]) -> None:
    """A store at schema v16 writes batches through the trigger; after v17 the same batches add
    their own sums; the rollups stay exact across the step."""
    store = open_store(store_url())
    try:
        store.migrate(target=16)  # type: ignore[call-arg]
        rng = random.Random(16)
        first = [_random_event(rng, i) for i in range(80)]
        store.record_spend(first, [()] * 80, [None] * 80)
        store.migrate()
        assert store.schema_version() >= 17
        second = [_random_event(rng, 100 + i) for i in range(80)]
        store.record_spend(second, [()] * 80, [None] * 80)
        assert _marked(store) == 80
        written = _rollup_rows(store)
        store.rebuild_rollups()
        assert _rollup_rows(store) == written
    finally:
        store.close()
