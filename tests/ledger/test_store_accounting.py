"""Reservation accounting on both stores: exact numbers for reserve, settle, release, expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from ledger_helpers import NOW, claim, event, reserve

from costplane.ledger import BudgetClaim, ReservationStatus, Store, StoreError, Window


def state(store: Store, c: BudgetClaim) -> tuple[int, int, int, int]:
    (s,) = store.claim_states([c])
    return s.spent_nano, s.reserved_nano, s.calls, s.concurrent


def test_reserve_settle_exact(store: Store) -> None:
    c = claim("team", 1000, limit_nano=10_000)
    res, result = reserve(store, [c])
    assert result.ok and result.refused is None
    (s,) = result.states
    assert (s.spent_nano, s.reserved_nano, s.calls, s.concurrent) == (0, 1000, 1, 1)
    assert s.remaining_nano == 9000
    assert store.open_reservations() == 1
    assert store.get_reservation(res.id) == res
    after = store.settle(res.id, event(637, rid=res.id))
    assert [(a.spent_nano, a.reserved_nano, a.calls, a.concurrent) for a in after] == [(637, 0, 1, 0)]
    assert state(store, c) == (637, 0, 1, 0)
    got = store.get_reservation(res.id)
    assert got is not None and got.status == ReservationStatus.SETTLED
    assert store.open_reservations() == 0
    assert store.count_events() == 1


def test_settle_is_idempotent_and_unknown_reservation_errors(store: Store) -> None:
    c = claim("team", 1000)
    res, _ = reserve(store, [c])
    ev = event(400, rid=res.id)
    store.settle(res.id, ev)
    store.settle(res.id, ev)
    assert state(store, c) == (400, 0, 1, 0)
    assert store.count_events() == 1
    with pytest.raises(StoreError, match="unknown reservation"):
        store.settle("nope", event(1))


def test_release_gives_everything_back(store: Store) -> None:
    c = claim("team", 1000, limit_nano=5000)
    res, _ = reserve(store, [c])
    assert store.release(res.id) is True
    assert store.release(res.id) is False
    assert state(store, c) == (0, 0, 0, 0)
    got = store.get_reservation(res.id)
    assert got is not None and got.status == ReservationStatus.RELEASED
    with pytest.raises(ValueError):
        store.release(res.id, status="settled")


def test_expire_and_settle_after_expiry(store: Store) -> None:
    c = claim("team", 1000, limit_nano=5000)
    old, _ = reserve(store, [c], at=NOW, ttl=timedelta(seconds=30))
    reserve(store, [c], at=NOW, ttl=timedelta(hours=1))  # still open afterwards
    assert store.expire_reservations(NOW + timedelta(seconds=10)) == 0
    assert store.expire_reservations(NOW + timedelta(seconds=30)) == 1
    assert store.expire_reservations(NOW + timedelta(seconds=31)) == 0
    assert state(store, c) == (0, 1000, 1, 1)  # only `young` is held
    got = store.get_reservation(old.id)
    assert got is not None and got.status == ReservationStatus.EXPIRED
    # the late upstream answer still costs money: spent counts, and the call again
    after = store.settle(old.id, event(300, rid=old.id))
    late = after[0]
    assert (late.spent_nano, late.reserved_nano, late.calls, late.concurrent) == (300, 1000, 2, 1)
    store.settle(old.id, event(300, rid=old.id, eid="other"))  # a second event is spent too, no new call
    assert state(store, c) == (600, 1000, 2, 1)


def test_settle_after_release_with_same_event_twice(store: Store) -> None:
    c = claim("team", 1000)
    res, _ = reserve(store, [c])
    store.release(res.id)
    ev = event(250, rid=res.id)
    store.settle(res.id, ev)
    store.settle(res.id, ev)
    assert state(store, c) == (250, 0, 1, 0)


def test_hard_refusal_reports_exact_numbers(store: Store) -> None:
    c = claim("cap", 400, limit_nano=1000)
    r1, ok1 = reserve(store, [c])
    store.settle(r1.id, event(350, rid=r1.id))
    _, ok2 = reserve(store, [c])
    assert ok1.ok and ok2.ok
    _, refused = reserve(store, [c])
    assert not refused.ok and refused.states == ()
    assert refused.refused_limit == "amount"
    s = refused.refused
    assert s is not None
    assert (s.spent_nano, s.reserved_nano, s.calls, s.concurrent) == (350, 800, 3, 2)
    assert s.remaining_nano == -150 and s.limit_nano == 1000 and s.hard
    assert state(store, c) == (350, 400, 2, 1)  # nothing written
    _, fits = reserve(store, [claim("cap", 250, limit_nano=1000)])  # 350 + 400 + 250 == 1000
    assert fits.ok and fits.states[0].remaining_nano == 0


def test_soft_claims_never_refuse(store: Store) -> None:
    c = claim("soft", 700, limit_nano=1000, limit_calls=1, limit_concurrent=1, hard=False)
    for _ in range(3):
        _, result = reserve(store, [c])
        assert result.ok
    assert result.states[0].exceeded == "amount"
    assert state(store, c) == (0, 2100, 3, 3)


def test_multi_claim_atomicity(store: Store) -> None:
    first = claim("team", 600, limit_nano=10_000)
    second = claim("run", 600, partition="run=r1", limit_nano=1000)
    _, ok = reserve(store, [first, second])
    assert ok.ok and len(ok.states) == 2
    _, refused = reserve(store, [first, second])
    assert not refused.ok
    assert refused.refused is not None and refused.refused.budget == "run"
    assert refused.refused.reserved_nano == 1200
    assert state(store, first) == (0, 600, 1, 1)  # untouched by the refused reservation
    assert state(store, second) == (0, 600, 1, 1)
    assert store.open_reservations() == 1


def test_zero_amount_counting_claim(store: Store) -> None:
    c = claim("count", 0)
    for _ in range(3):
        assert reserve(store, [c])[1].ok
    assert state(store, c) == (0, 0, 3, 3)


def test_two_claims_on_one_window_see_each_other(store: Store) -> None:
    a = claim("same", 600, limit_nano=1000, hard=False)
    b = claim("same", 600, limit_nano=1000)
    _, result = reserve(store, [a, b])
    assert not result.ok and result.refused is not None and result.refused.reserved_nano == 1200


def test_calls_limit(store: Store) -> None:
    c = claim("calls", 0, limit_calls=2)
    r1, _ = reserve(store, [c])
    assert reserve(store, [c])[1].ok
    _, refused = reserve(store, [c])
    assert refused.refused_limit == "calls" and refused.refused is not None and refused.refused.calls == 3
    store.settle(r1.id, event(0, rid=r1.id))
    assert reserve(store, [c])[1].refused_limit == "calls"  # settled calls still count
    store.release(r1.id)  # no-op: already settled
    assert state(store, c)[2] == 2


def test_concurrent_limit(store: Store) -> None:
    c = claim("conc", 10, limit_concurrent=2)
    r1, _ = reserve(store, [c])
    r2, _ = reserve(store, [c])
    _, refused = reserve(store, [c])
    assert refused.refused_limit == "concurrent"
    assert refused.refused is not None and refused.refused.concurrent == 3
    store.settle(r1.id, event(5, rid=r1.id))
    r3, ok = reserve(store, [c])
    assert ok.ok and ok.states[0].concurrent == 2
    store.release(r2.id)
    store.release(r3.id)
    assert state(store, c) == (5, 0, 1, 0)


def test_record_event_adds_spent_once(store: Store) -> None:
    c = claim("team", 0, limit_nano=1000)
    ev = event(300, kind="cache_hit", status="cached", saved_nano=900)
    assert store.record_event(ev, [c]) is True
    assert store.record_event(ev, [c]) is False
    assert state(store, c) == (300, 0, 0, 0)
    assert store.record_event(event(5)) is True
    assert store.count_events() == 2


def test_rolling_window_forgets_old_buckets(store: Store) -> None:
    window = Window("rolling", seconds=3600)  # 60 buckets of 60 s

    def at(t: datetime, amount: int = 100) -> BudgetClaim:
        start, bucket = window.bounds(t)
        return claim("roll", amount, bucket=bucket, window_start=start, limit_nano=250)

    t0 = datetime(2025, 1, 1, 10, 0, 30, tzinfo=UTC)
    for minutes in (0, 30):
        res, result = reserve(store, [at(t0 + timedelta(minutes=minutes))])
        assert result.ok
        store.settle(res.id, event(100, rid=res.id))
    assert not reserve(store, [at(t0 + timedelta(minutes=59))])[1].ok  # 200 + 100 > 250
    assert state(store, at(t0 + timedelta(minutes=59))) == (200, 0, 2, 0)
    later = t0 + timedelta(minutes=60)  # the t0 bucket has left the window
    assert state(store, at(later)) == (100, 0, 1, 0)
    assert reserve(store, [at(later)])[1].ok
    assert state(store, at(t0 + timedelta(minutes=91))) == (0, 100, 1, 1)


def test_calendar_month_in_berlin_across_dst(store: Store) -> None:
    window = Window("calendar", calendar="month", timezone="Europe/Berlin")
    berlin_march = datetime(2025, 2, 28, 23, 0, tzinfo=UTC)  # 1 March 00:00 CET (UTC+1)
    berlin_april = datetime(2025, 3, 31, 22, 0, tzinfo=UTC)  # 1 April 00:00 CEST (UTC+2)

    def at(t: datetime) -> BudgetClaim:
        start, bucket = window.bounds(t)
        return claim("month", 100, bucket=bucket, window_start=start, limit_nano=1000)

    instants = [
        datetime(2025, 2, 28, 23, 0, tzinfo=UTC),  # first instant of March in Berlin
        datetime(2025, 3, 30, 0, 59, tzinfo=UTC),  # just before the switch to summer time
        datetime(2025, 3, 30, 1, 0, tzinfo=UTC),  # 03:00 CEST, just after it
        datetime(2025, 3, 31, 21, 59, tzinfo=UTC),  # 23:59 CEST, last minute of March
    ]
    for t in instants:
        c = at(t)
        assert c.window_start == int(berlin_march.timestamp())
        res, result = reserve(store, [c])
        assert result.ok
        store.settle(res.id, event(100, rid=res.id, ts=t))
    april = at(berlin_april)
    assert april.window_start == int(berlin_april.timestamp())
    assert state(store, april) == (0, 0, 0, 0)
    assert state(store, at(instants[-1])) == (400, 0, 4, 0)
    february = at(datetime(2025, 2, 28, 22, 59, tzinfo=UTC))  # 23:59 CET, still February
    assert february.bucket < int(berlin_march.timestamp())
