"""Lease-based budgets keep the `BudgetLedger` contract across processes (SQLite and PostgreSQL):
a request admitted from a lease can be settled again, or late, by any process sharing the store;
another process's view of a window never shows more room than exists. The single-process contract
is the conformance suite's (tests/ledger/contracts/test_budget_ledger.py, leased backends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from ledger_helpers import claim, decision, event, reservation

from costplane.ledger import Store
from costplane.ledger.base import SqlStore
from costplane.ledger.lease_store import LeasedRecord
from costplane.ledger.leases import LeasedLedger, LeaseSettings, decode_record, encode_record
from costplane.ledger.types import ReservationStatus

LIMIT = 100_000


def ledger(store: Store, directory: Path) -> LeasedLedger:
    if not isinstance(store, SqlStore):
        raise TypeError("a leased ledger needs a SQL store")
    settings = LeaseSettings(enabled=True, journal_dir=directory, flush_interval=3600.0, hot_per_second=1)
    return LeasedLedger(store, settings)


def test_another_process_settles_a_leased_request_again_or_with_a_second_event(store: Store, tmp_path: Path) -> None:
    first, second = ledger(store, tmp_path / "journal"), ledger(store, tmp_path / "journal")
    c = claim("team", 1000, limit_nano=LIMIT)
    res = reservation([c])
    assert first.reserve(res, decision(res.decision_id)).ok and first.leased == 1
    ev = event(400, rid=res.id)
    first.settle(res.id, ev)
    first.flush()  # applied: the closed reservation row is in the store
    stored = store.get_reservation(res.id)
    assert stored is not None and stored.status == ReservationStatus.SETTLED
    second.settle(res.id, ev)  # a retried settle reaching another process: nothing changes
    (after,) = second.claim_states([c])
    assert (after.spent_nano, after.calls, after.concurrent) == (400, 1, 0)
    second.settle(res.id, event(50, rid=res.id, eid="second-event"))  # spent too, no new call
    (after,) = first.claim_states([c])
    assert (after.spent_nano, after.calls) == (450, 1)
    first.close()
    second.close()
    assert store.count_events() == 2


def test_a_late_answer_after_expiry_is_spent_and_moves_nothing_off_the_lease(store: Store, tmp_path: Path) -> None:
    leased = ledger(store, tmp_path / "journal")
    c = claim("team", 1000, limit_nano=LIMIT)
    stale = reservation([c], at=datetime.now(UTC) - timedelta(hours=1))
    assert leased.reserve(stale, decision(stale.decision_id)).ok and leased.leased == 1
    assert leased.expire_reservations(datetime.now(UTC)) == 1
    leased.flush()
    held_before = store.leases_held()  # type: ignore[attr-defined]
    (before,) = store.claim_states([c])
    late = event(700, rid=stale.id)
    states = leased.settle(stale.id, late)  # the upstream answered after all
    assert (states[0].spent_nano, states[0].calls, states[0].concurrent) == (700, 1, 0)
    assert store.leases_held() == held_before  # type: ignore[attr-defined]
    (after,) = store.claim_states([c])
    assert after.reserved_nano == before.reserved_nano and after.spent_nano == before.spent_nano + 700
    again = leased.settle(stale.id, late)  # and retried: a no-op
    assert again[0].spent_nano == 700
    stored = store.get_reservation(stale.id)
    assert stored is not None and stored.status == ReservationStatus.SETTLED
    leased.close()


def test_a_settle_right_after_a_release_in_the_same_process_records_the_spend(store: Store, tmp_path: Path) -> None:
    leased = ledger(store, tmp_path / "journal")
    c = claim("team", 1000, limit_nano=LIMIT)
    res = reservation([c])
    assert leased.reserve(res, decision(res.decision_id)).ok
    assert leased.release(res.id) is True and leased.release(res.id) is False
    leased.settle(res.id, event(300, rid=res.id))  # the release is not applied yet: applied first
    (state,) = leased.claim_states([c])
    assert (state.spent_nano, state.reserved_nano, state.calls, state.concurrent) == (300, 0, 1, 0)
    leased.close()


def test_other_processes_see_a_lease_whole_as_reserved(store: Store, tmp_path: Path) -> None:
    owner, other = ledger(store, tmp_path / "journal"), ledger(store, tmp_path / "journal")
    c = claim("team", 1000, limit_nano=LIMIT)
    res = reservation([c])
    assert owner.reserve(res, decision(res.decision_id)).ok
    (lease_held,) = store.leases_held().values()  # type: ignore[attr-defined]
    assert lease_held > 1000  # headroom beyond the one request
    (own,) = owner.claim_states([c])
    (seen,) = other.claim_states([c])
    assert (own.reserved_nano, own.calls, own.concurrent) == (1000, 1, 1)  # exact for its own process
    assert seen.reserved_nano == lease_held  # never more room than exists
    assert seen.remaining_nano is not None and seen.remaining_nano == LIMIT - lease_held
    owner.settle(res.id, event(600, rid=res.id))
    owner.flush()
    (seen,) = other.claim_states([c])
    assert (seen.spent_nano, seen.calls) == (600, 1)  # after the writer applied the journal
    owner.close()
    other.close()
    assert store.leases_held() == {}  # type: ignore[attr-defined]


def test_the_journal_keeps_the_reservation_and_a_replay_writes_its_row_once(store: Store, tmp_path: Path) -> None:
    c = claim("team", 1000, limit_nano=LIMIT)
    res = reservation([c])
    record = LeasedRecord(decision(res.decision_id), res.claims, (None,), None, res, ReservationStatus.EXPIRED)
    decoded = decode_record(encode_record(record))
    assert decoded.reservation is not None and decoded.reservation.id == res.id
    assert decoded.closed_as == ReservationStatus.EXPIRED
    assert isinstance(store, SqlStore)
    store.apply_leased([decoded])
    store.apply_leased([decoded])  # replayed
    stored = store.get_reservation(res.id)
    assert stored is not None and stored.status == ReservationStatus.EXPIRED
    assert store.reservation_statuses([res.id]) == {res.id: ReservationStatus.EXPIRED}
    older = {k: v for k, v in encode_record(record).items() if k not in ("r", "s")}  # a journal of an earlier version
    assert decode_record(older).reservation is None


def test_a_batch_of_gateway_events_supersedes_the_spans_of_its_calls_only(store: Store) -> None:
    """The lease writer reconciles a batch with one probe: the earlier OTLP events of exactly the
    calls in the batch — by response id, or by trace id and span id — are superseded, an unrelated
    span of the same trace and a span of another response id still count."""
    from costplane.pricing.types import TokenUsage

    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    spans = [event(650, eid=f"otel-{trace}-1111111111111111", trace_id=trace, span_id="1111111111111111",
                   response_id="chatcmpl-by-response", usage=TokenUsage(100, 20)),
             event(640, eid=f"otel-{trace}-2222222222222222", trace_id=trace, span_id="2222222222222222",
                   usage=TokenUsage(100, 20)),
             event(630, eid=f"otel-{trace}-3333333333333333", trace_id=trace, span_id="3333333333333333",
                   usage=TokenUsage(100, 20)),
             event(620, eid=f"otel-{trace}-4444444444444444", trace_id=trace, span_id="4444444444444444",
                   response_id="chatcmpl-other", usage=TokenUsage(100, 20))]  # fmt: skip
    for span in spans:
        assert store.record_event(span)
    gateway = [event(700, response_id="chatcmpl-by-response", trace_id=trace, span_id="9999999999999999"),
               event(710, trace_id=trace, span_id="2222222222222222"),
               *(event(100 + i, response_id=f"chatcmpl-{i}", trace_id=f"{i:032x}", span_id=f"{i:016x}")
                 for i in range(60))]  # fmt: skip
    assert isinstance(store, SqlStore)
    store.apply_leased([LeasedRecord(decision(), (), (), e) for e in gateway])
    status = {s.id: getattr(store.get_event(s.id), "status", None) for s in spans}
    assert status == {spans[0].id: "superseded", spans[1].id: "superseded", spans[2].id: "ok", spans[3].id: "ok"}
    assert sum(r.cost_nano for r in store.spend()) == 630 + 620 + sum(e.cost_nano for e in gateway)
