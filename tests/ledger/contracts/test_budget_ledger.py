"""Conformance of `BudgetLedger`: the counters every backend must keep exactly (SQLite, PostgreSQL,
in memory, and the lease-based ledger over SQLite and PostgreSQL), with exact numbers for reserve,
settle, release, expire, grow, accrue and the spend recorded without a reservation. Only the
contract's own methods are used, so a ledger that implements nothing else passes it.

Atomicity: a reserve adds every claim or none and a refusal writes nothing; a settle is idempotent
by event id; concurrent reserves never take a hard window over its limit.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from ledger_helpers import NOW, claim, decision, event, reservation

from costplane.attribution.context import Context
from costplane.ledger import BudgetClaim, Reservation, ReserveResult, StoreError, Window
from costplane.ledger.contracts import BudgetLedger


def reserve(ledger: BudgetLedger, claims: list[BudgetClaim], **kw: object) -> tuple[Reservation, ReserveResult]:
    res = reservation(claims, **kw)  # type: ignore[arg-type]
    return res, ledger.reserve(res, decision(res.decision_id))


def state(ledger: BudgetLedger, c: BudgetClaim) -> tuple[int, int, int, int]:
    (s,) = ledger.claim_states([c])
    return s.spent_nano, s.reserved_nano, s.calls, s.concurrent


def test_reserve_settle_exact(ledger: BudgetLedger) -> None:
    c = claim("team", 1000, limit_nano=10_000)
    res, result = reserve(ledger, [c])
    assert result.ok and result.refused is None
    (s,) = result.states
    assert (s.spent_nano, s.reserved_nano, s.calls, s.concurrent) == (0, 1000, 1, 1)
    assert s.remaining_nano == 9000
    after = ledger.settle(res.id, event(637, rid=res.id))
    assert [(a.spent_nano, a.reserved_nano, a.calls, a.concurrent) for a in after] == [(637, 0, 1, 0)]
    assert state(ledger, c) == (637, 0, 1, 0)


def test_settle_is_idempotent_and_unknown_reservation_errors(ledger: BudgetLedger) -> None:
    c = claim("team", 1000)
    res, _ = reserve(ledger, [c])
    ev = event(400, rid=res.id)
    ledger.settle(res.id, ev)
    ledger.settle(res.id, ev)
    assert state(ledger, c) == (400, 0, 1, 0)
    with pytest.raises(StoreError, match="unknown reservation"):
        ledger.settle("nope", event(1))


def test_release_gives_everything_back(ledger: BudgetLedger) -> None:
    c = claim("team", 1000, limit_nano=5000)
    res, _ = reserve(ledger, [c])
    assert ledger.release(res.id) is True
    assert ledger.release(res.id) is False
    assert state(ledger, c) == (0, 0, 0, 0)
    with pytest.raises(ValueError):
        ledger.release(res.id, status="settled")


def test_expire_and_settle_after_expiry(ledger: BudgetLedger) -> None:
    c = claim("team", 1000, limit_nano=5000)
    old, _ = reserve(ledger, [c], at=NOW, ttl=timedelta(seconds=30))
    reserve(ledger, [c], at=NOW, ttl=timedelta(hours=1))  # still open afterwards
    assert ledger.expire_reservations(NOW + timedelta(seconds=10)) == 0
    assert ledger.expire_reservations(NOW + timedelta(seconds=30)) == 1
    assert ledger.expire_reservations(NOW + timedelta(seconds=31)) == 0
    assert state(ledger, c) == (0, 1000, 1, 1)  # only `young` is held
    # the late upstream answer still costs money: spent counts, and the call again
    after = ledger.settle(old.id, event(300, rid=old.id))
    late = after[0]
    assert (late.spent_nano, late.reserved_nano, late.calls, late.concurrent) == (300, 1000, 2, 1)
    ledger.settle(old.id, event(300, rid=old.id, eid="other"))  # a second event is spent too, no new call
    assert state(ledger, c) == (600, 1000, 2, 1)


def test_settle_after_release_with_same_event_twice(ledger: BudgetLedger) -> None:
    c = claim("team", 1000)
    res, _ = reserve(ledger, [c])
    ledger.release(res.id)
    ev = event(250, rid=res.id)
    ledger.settle(res.id, ev)
    ledger.settle(res.id, ev)
    assert state(ledger, c) == (250, 0, 1, 0)


def test_hard_refusal_reports_exact_numbers(ledger: BudgetLedger) -> None:
    c = claim("cap", 400, limit_nano=1000)
    r1, ok1 = reserve(ledger, [c])
    ledger.settle(r1.id, event(350, rid=r1.id))
    _, ok2 = reserve(ledger, [c])
    assert ok1.ok and ok2.ok
    _, refused = reserve(ledger, [c])
    assert not refused.ok and refused.states == ()
    assert refused.refused_limit == "amount"
    s = refused.refused
    assert s is not None
    assert (s.spent_nano, s.reserved_nano, s.calls, s.concurrent) == (350, 800, 3, 2)
    assert s.remaining_nano == -150 and s.limit_nano == 1000 and s.hard
    assert state(ledger, c) == (350, 400, 2, 1)  # nothing written
    _, fits = reserve(ledger, [claim("cap", 250, limit_nano=1000)])  # 350 + 400 + 250 == 1000
    assert fits.ok and fits.states[0].remaining_nano == 0


def test_soft_claims_never_refuse(ledger: BudgetLedger) -> None:
    c = claim("soft", 700, limit_nano=1000, limit_calls=1, limit_concurrent=1, hard=False)
    for _ in range(3):
        _, result = reserve(ledger, [c])
        assert result.ok
    assert result.states[0].exceeded == "amount"
    assert state(ledger, c) == (0, 2100, 3, 3)


def test_multi_claim_atomicity(ledger: BudgetLedger) -> None:
    first = claim("team", 600, limit_nano=10_000)
    second = claim("run", 600, partition="run=r1", limit_nano=1000)
    _, ok = reserve(ledger, [first, second])
    assert ok.ok and len(ok.states) == 2
    _, refused = reserve(ledger, [first, second])
    assert not refused.ok
    assert refused.refused is not None and refused.refused.budget == "run"
    assert refused.refused.reserved_nano == 1200
    assert state(ledger, first) == (0, 600, 1, 1)  # untouched by the refused reservation
    assert state(ledger, second) == (0, 600, 1, 1)


def test_zero_amount_counting_claim(ledger: BudgetLedger) -> None:
    c = claim("count", 0)
    for _ in range(3):
        assert reserve(ledger, [c])[1].ok
    assert state(ledger, c) == (0, 0, 3, 3)


def test_two_claims_on_one_window_see_each_other(ledger: BudgetLedger) -> None:
    a = claim("same", 600, limit_nano=1000, hard=False)
    b = claim("same", 600, limit_nano=1000)
    _, result = reserve(ledger, [a, b])
    assert not result.ok and result.refused is not None and result.refused.reserved_nano == 1200


def test_calls_limit(ledger: BudgetLedger) -> None:
    c = claim("calls", 0, limit_calls=2)
    r1, _ = reserve(ledger, [c])
    assert reserve(ledger, [c])[1].ok
    _, refused = reserve(ledger, [c])
    assert refused.refused_limit == "calls" and refused.refused is not None and refused.refused.calls == 3
    ledger.settle(r1.id, event(0, rid=r1.id))
    assert reserve(ledger, [c])[1].refused_limit == "calls"  # settled calls still count
    ledger.release(r1.id)  # no-op: already settled
    assert state(ledger, c)[2] == 2


def test_concurrent_limit(ledger: BudgetLedger) -> None:
    c = claim("conc", 10, limit_concurrent=2)
    r1, _ = reserve(ledger, [c])
    r2, _ = reserve(ledger, [c])
    _, refused = reserve(ledger, [c])
    assert refused.refused_limit == "concurrent"
    assert refused.refused is not None and refused.refused.concurrent == 3
    ledger.settle(r1.id, event(5, rid=r1.id))
    r3, ok = reserve(ledger, [c])
    assert ok.ok and ok.states[0].concurrent == 2
    ledger.release(r2.id)
    ledger.release(r3.id)
    assert state(ledger, c) == (5, 0, 1, 0)


def test_record_event_adds_spent_once(ledger: BudgetLedger) -> None:
    c = claim("team", 0, limit_nano=1000)
    ev = event(300, kind="cache_hit", status="cached", saved_nano=900)
    assert ledger.record_event(ev, [c]) is True
    assert ledger.record_event(ev, [c]) is False
    assert state(ledger, c) == (300, 0, 0, 0)
    assert ledger.record_event(event(5)) is True


def test_rolling_window_forgets_old_buckets(ledger: BudgetLedger) -> None:
    window = Window("rolling", seconds=3600)  # 60 buckets of 60 s

    def at(t: datetime, amount: int = 100) -> BudgetClaim:
        start, bucket = window.bounds(t)
        return claim("roll", amount, bucket=bucket, window_start=start, limit_nano=250)

    t0 = datetime(2025, 1, 1, 10, 0, 30, tzinfo=UTC)
    for minutes in (0, 30):
        res, result = reserve(ledger, [at(t0 + timedelta(minutes=minutes))])
        assert result.ok
        ledger.settle(res.id, event(100, rid=res.id))
    assert not reserve(ledger, [at(t0 + timedelta(minutes=59))])[1].ok  # 200 + 100 > 250
    assert state(ledger, at(t0 + timedelta(minutes=59))) == (200, 0, 2, 0)
    later = t0 + timedelta(minutes=60)  # the t0 bucket has left the window
    assert state(ledger, at(later)) == (100, 0, 1, 0)
    assert reserve(ledger, [at(later)])[1].ok
    assert state(ledger, at(t0 + timedelta(minutes=91))) == (0, 100, 1, 1)


def test_calendar_month_in_berlin_across_dst(ledger: BudgetLedger) -> None:
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
        res, result = reserve(ledger, [c])
        assert result.ok
        ledger.settle(res.id, event(100, rid=res.id, ts=t))
    april = at(berlin_april)
    assert april.window_start == int(berlin_april.timestamp())
    assert state(ledger, april) == (0, 0, 0, 0)
    assert state(ledger, at(instants[-1])) == (400, 0, 4, 0)
    february = at(datetime(2025, 2, 28, 22, 59, tzinfo=UTC))  # 23:59 CET, still February
    assert february.bucket < int(berlin_march.timestamp())


def test_grow_holds_more_within_the_limit_and_refuses_past_it(ledger: BudgetLedger) -> None:
    c = claim("env", 1000, limit_nano=3000)
    res, _ = reserve(ledger, [c])
    grown = ledger.grow_reservation(res.id, 1500, NOW + timedelta(hours=2))
    assert grown.ok and grown.states[0].reserved_nano == 2500
    refused = ledger.grow_reservation(res.id, 600, NOW + timedelta(hours=3))
    assert not refused.ok and refused.refused_limit == "amount"
    assert state(ledger, c) == (0, 2500, 1, 1)
    # the grown hold expires at the new time, not the original one
    assert ledger.expire_reservations(NOW + timedelta(hours=1)) == 0
    assert ledger.expire_reservations(NOW + timedelta(hours=2)) == 1
    assert state(ledger, c) == (0, 0, 0, 0)


def test_accrue_moves_cost_from_held_to_spent_and_close_gives_back_the_rest(ledger: BudgetLedger) -> None:
    c = claim("env", 1000, limit_nano=10_000)
    res, _ = reserve(ledger, [c])
    first = ledger.accrue(res.id, event(300, rid=res.id, kind="environment"))
    assert (first[0].spent_nano, first[0].reserved_nano, first[0].concurrent) == (300, 700, 1)
    again = ledger.accrue(res.id, event(300, rid=res.id, eid=None, kind="environment"), close=True)
    assert (again[0].spent_nano, again[0].reserved_nano, again[0].concurrent) == (600, 0, 0)
    assert ledger.release(res.id) is False  # closed by the accrual
    assert state(ledger, c) == (600, 0, 1, 0)


def test_record_spend_adds_observed_spend_past_limits_in_one_batch(ledger: BudgetLedger) -> None:
    a, b = claim("a", 0, limit_nano=100), claim("b", 0, limit_nano=100)
    e1, e2 = event(90), event(60)
    new, states = ledger.record_spend([e1, e2, e1], [[a], [a, b], [a]], [decision(), None, None])
    assert new == (True, True, False)
    assert {(s.budget, s.spent_nano) for s in states} == {("a", 150), ("b", 60)}
    assert state(ledger, a) == (150, 0, 0, 0)


def test_claim_states_only_read(ledger: BudgetLedger) -> None:
    c = claim("team", 500, limit_nano=1000)
    reserve(ledger, [c])
    assert ledger.claim_states([c]) == ledger.claim_states([c])
    assert state(ledger, c) == (0, 500, 1, 1)


def test_windows_count_only_buckets_from_their_start(ledger: BudgetLedger) -> None:
    yesterday = claim("daily", 0, bucket=0, window_start=0)
    today = claim("daily", 0, bucket=86_400, window_start=86_400)
    ledger.record_event(event(70), [yesterday])
    ledger.record_event(event(30), [today])
    assert state(ledger, yesterday)[0] == 100  # its window started earlier: both buckets count
    assert state(ledger, today)[0] == 30
    assert state(ledger, claim("daily", 0, partition="run=other"))[0] == 0  # another partition


def test_count_recent_requests(ledger: BudgetLedger) -> None:
    for i in range(4):
        ts = NOW + timedelta(seconds=10 * i)
        ledger.record_event(event(1, ts=ts, ctx=Context(run="loop"), request_hash="same"))
    ledger.record_event(event(1, ctx=Context(run="other"), request_hash="same"))
    assert ledger.count_recent_requests("loop", "same", NOW) == 4
    assert ledger.count_recent_requests("loop", "same", NOW + timedelta(seconds=15)) == 2
    assert ledger.count_recent_requests("loop", "different", NOW) == 0


def test_record_decision_of_a_denial_holds_nothing(ledger: BudgetLedger) -> None:
    c = claim("team", 0)
    ledger.record_decision(decision(effect="deny"))
    assert state(ledger, c) == (0, 0, 0, 0)


def test_concurrent_reserves_never_overshoot_a_hard_limit(ledger: BudgetLedger) -> None:
    c = claim("hot", 100, limit_nano=1000)
    admitted: list[Reservation] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(10):
            res, result = reserve(ledger, [c])
            if result.ok:
                with lock:
                    admitted.append(res)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 10  # exactly the limit's worth of 100-nano holds out of 40 tries
    assert state(ledger, c) == (0, 1000, 10, 10)
    for res in admitted:
        ledger.settle(res.id, event(100, rid=res.id))
    assert state(ledger, c) == (1000, 0, 10, 0)
