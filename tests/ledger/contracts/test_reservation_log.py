"""Conformance of `ReservationLog`: reservations and counter partitions read back."""

from __future__ import annotations

from ledger_helpers import claim, event, reserve

from costplane.ledger import ReservationStatus, Store


def test_open_reservations_and_statuses_follow_the_lifecycle(store: Store) -> None:
    c = claim("team", 100)
    settled, _ = reserve(store, [c])
    released, _ = reserve(store, [c])
    held, _ = reserve(store, [c])
    assert store.open_reservations() == 3
    store.settle(settled.id, event(50, rid=settled.id))
    store.release(released.id)
    assert store.open_reservations() == 1
    assert store.get_reservation(held.id) == held
    got = store.get_reservation(settled.id)
    assert got is not None and got.status == ReservationStatus.SETTLED and got.claims == settled.claims
    assert store.get_reservation("unknown") is None
    assert store.reservation_statuses([settled.id, released.id, held.id, "unknown"]) == {
        settled.id: ReservationStatus.SETTLED, released.id: ReservationStatus.RELEASED,
        held.id: ReservationStatus.OPEN}


def test_budget_partitions_most_used_first_within_the_window(store: Store) -> None:
    store.record_event(event(10), [claim("per-run", 0, partition="run=a", bucket=100)])
    store.record_event(event(90), [claim("per-run", 0, partition="run=b", bucket=100)])
    store.record_event(event(500), [claim("per-run", 0, partition="run=old", bucket=10)])
    reserve(store, [claim("per-run", 40, partition="run=c", bucket=100)])
    store.record_event(event(1), [claim("other", 0, partition="run=z", bucket=100)])
    assert store.budget_partitions("per-run", 100) == ["run=b", "run=c", "run=a"]
    assert store.budget_partitions("per-run", 100, limit=1) == ["run=b"]
    assert store.budget_partitions("per-run", 0)[0] == "run=old"
