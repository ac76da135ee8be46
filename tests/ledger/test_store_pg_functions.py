"""Schema v3: PostgreSQL's server-side functions — upgrade from v2 with data, one round trip per
write, and the function path and the multi-statement path agreeing (also side by side)."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable

import pytest
from ledger_helpers import claim, decision, event, reservation, reserve

from costplane.ledger import Store, codec, open_store, pg_functions
from costplane.ledger.migrations import LATEST, statements
from costplane.ledger.postgres import PostgresStore


def _sums(store: Store, c: object) -> tuple[int, int, int, int]:
    (s,) = store.claim_states([c])  # type: ignore[list-item]
    return s.spent_nano, s.reserved_nano, s.calls, s.concurrent


def test_function_parameters_follow_the_codec_columns() -> None:
    assert tuple(name for name, _ in pg_functions.EVENT_PARAMS) == codec.EVENT_COLUMNS
    assert tuple(name for name, _ in pg_functions.DECISION_PARAMS) == codec.DECISION_COLUMNS
    assert ("id", "status", *(n for n, _ in pg_functions.RESERVATION_PARAMS[1:])) == codec.RESERVATION_COLUMNS
    for ddl in pg_functions.DDL:  # the driver rewrites '?' and '%' in every statement it runs
        assert "?" not in ddl and "%" not in ddl
    assert statements("sqlite", 3) == []
    assert len(statements("postgres", 3)) == len(pg_functions.FUNCTIONS)


def test_upgrade_from_v2_with_data(store_url: Callable[[], str]) -> None:
    """Data and open reservations written under v2 (multi-statement path) are settled,
    released and counted exactly by the v3 functions after `migrate()`."""
    url = store_url()
    store = open_store(url)
    try:
        store.migrate(target=2)
        assert store.schema_version() == 2
        team = claim("team", 1000, limit_nano=3500)
        run = claim("run", 1000, partition="run=r1", limit_calls=10)
        done, ok = reserve(store, [team, run])  # v2: no functions, the store falls back
        assert ok.ok
        store.settle(done.id, event(600, rid=done.id))
        held, _ = reserve(store, [team, run])
        given_back, _ = reserve(store, [team, run])
        assert store.record_event(event(100, eid="cached"), [team])
        assert _sums(store, team) == (700, 2000, 3, 2)

        store.migrate(target=3)  # the upgrade under test: v2 -> v3 (the server-side functions)
        assert store.schema_version() == 3
        store.migrate(target=3)  # idempotent
        if isinstance(store, PostgresStore):
            with store._conn().cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_proc WHERE proname = ANY(%s) AND pronamespace = "
                            "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())",
                            (list(pg_functions.FUNCTIONS),))  # fmt: skip
                assert cur.fetchone() == (len(pg_functions.FUNCTIONS),)

        after = store.settle(held.id, event(800, rid=held.id))  # a v2 reservation settled by v3
        assert [(s.spent_nano, s.reserved_nano, s.calls, s.concurrent) for s in after] == [
            (1500, 1000, 3, 1), (1400, 1000, 3, 1),
        ]  # fmt: skip
        assert store.release(given_back.id) is True
        assert store.release(given_back.id) is False
        assert _sums(store, team) == (1500, 0, 2, 0)
        _, refused = reserve(store, [team, run])  # 1500 + 1000 fits, the limit is 3500 …
        assert refused.ok
        _, refused = reserve(store, [team, run])  # … 1500 + 2000 fits exactly, 1500 + 3000 doesn't
        assert refused.ok
        _, refused = reserve(store, [team, run])
        assert not refused.ok and refused.refused_limit == "amount" and refused.refused is not None
        assert (refused.refused.budget, refused.refused.reserved_nano) == ("team", 3000)
        assert store.count_events() == 3 and store.get_event("cached") is not None
        store.migrate()  # later versions (environments, runs …) apply on top of the upgraded data
        assert store.schema_version() == LATEST and store.count_events() == 3
    finally:
        store.close()


@pytest.mark.postgres
def test_one_round_trip_per_write(store: Store) -> None:
    if not isinstance(store, PostgresStore):
        pytest.skip("PostgreSQL only")
    claims = [claim("team", 5000, limit_nano=10**12), claim("run", 5000, partition="run=r1")]

    def round_trips(fn: Callable[[], object]) -> int:
        conn = store._conn()
        fd, path = tempfile.mkstemp()
        try:
            conn.pgconn.trace(fd)
            fn()
            conn.pgconn.untrace()
            with open(path) as trace:  # frontend messages that wait for an answer
                return sum(1 for line in trace if "\tF\t" in line and ("\tSync" in line or "\tQuery" in line))
        finally:
            os.close(fd)
            os.unlink(path)

    for i in range(8):  # psycopg prepares a statement on its 6th use: one extra round trip, once
        r = reservation(claims)
        once = 1 if i != 5 else 2
        assert round_trips(lambda r=r: store.reserve(r, decision(r.decision_id))) == once  # type: ignore[misc]
        assert round_trips(lambda r=r: store.settle(r.id, event(7, rid=r.id))) == once  # type: ignore[misc]
    r = reservation(claims)
    store.reserve(r, decision(r.decision_id))
    assert round_trips(lambda: store.release(r.id)) == 1
    assert round_trips(lambda: store.record_event(event(3), claims)) == 1
    store.use_functions = False  # type: ignore[attr-defined]
    r = reservation(claims)
    assert round_trips(lambda: store.reserve(r, decision(r.decision_id))) > 4  # the v2 path, for contrast


@pytest.mark.postgres
def test_functions_and_multi_statement_path_side_by_side(store: Store) -> None:
    """A replica on the v2 code path and one on the v3 functions share one hard budget:
    same locks, same order — exactly 100 of 400 fit, and the counters are exact."""
    if not isinstance(store, PostgresStore):
        pytest.skip("PostgreSQL only")
    amount = 1_000_003
    limit = 100 * amount + amount // 2
    legacy = PostgresStore(store.url)
    legacy.use_functions = False
    settled = [0]
    highest = [0]
    lock = threading.Lock()

    def work(s: PostgresStore) -> None:
        for _ in range(50):
            c = claim("shared", amount, limit_nano=limit)
            res, result = reserve(s, [c, claim("other", 1, partition="p")])
            if not result.ok:
                continue
            with lock:
                highest[0] = max(highest[0], result.states[0].spent_nano + result.states[0].reserved_nano)
            s.settle(res.id, event(amount, rid=res.id))
            with lock:
                settled[0] += 1

    threads = [threading.Thread(target=work, args=(s,)) for s in (store, legacy) * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    legacy.close()
    assert highest[0] <= limit
    assert settled[0] == 100
    assert _sums(store, claim("shared", amount, limit_nano=limit)) == (100 * amount, 0, 100, 0)
    assert _sums(store, claim("other", 1, partition="p")) == (100 * amount, 0, 100, 0)


def test_soft_claims_on_one_row_add_up(store: Store) -> None:
    """Two claims of one reservation on the same counter row are both added (one upsert per row)."""
    a = claim("same", 600, hard=False)
    b = claim("same", 400, hard=False)
    res, result = reserve(store, [a, b])
    assert result.ok and [s.reserved_nano for s in result.states] == [600, 1000]
    assert _sums(store, a) == (0, 1000, 2, 2)
    after = store.settle(res.id, event(300, rid=res.id))
    assert [(s.spent_nano, s.reserved_nano, s.calls, s.concurrent) for s in after] == [(600, 0, 2, 0)] * 2
    assert store.record_event(event(5), [a, b])
    assert _sums(store, a) == (610, 0, 2, 0)


def test_reservation_without_claims(store: Store) -> None:
    res, result = reserve(store, [])
    assert result.ok and result.states == ()
    assert store.settle(res.id, event(9, rid=res.id)) == ()
    res2, _ = reserve(store, [])
    assert store.release(res2.id) is True
    assert store.count_events() == 1 and store.open_reservations() == 0
