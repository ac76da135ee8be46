"""Conformance of `Environments`: round trip, filters, the due list, guarded updates and the
compare-and-set transition (state, changes, transition row and decision in one transaction)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ledger_helpers import NOW, decision

from costplane.ledger import Store
from costplane.ledger.envtypes import EnvState
from costplane.ledger.usertypes import EnvironmentQuery, Scope

from .records import environment


def test_environments_round_trip_and_filter(store: Store) -> None:
    active = environment(team="ml", at=NOW)
    pending = environment(state=EnvState.PENDING, team="web", blueprint="gpu", at=NOW + timedelta(seconds=1))
    store.create_environment(active, decision(active.decision_id))
    store.create_environment(pending)
    assert store.get_environment(active.id) == active and store.get_environment("nope") is None
    assert {e.id for e in store.list_environments()} == {active.id, pending.id}
    assert [e.id for e in store.list_environments(states=[EnvState.PENDING])] == [pending.id]
    assert [e.id for e in store.query_environments(EnvironmentQuery())] == [pending.id, active.id]  # newest first
    assert [e.id for e in store.query_environments(EnvironmentQuery(team="ml"))] == [active.id]
    assert [e.id for e in store.query_environments(EnvironmentQuery(blueprint="gpu"))] == [pending.id]
    assert [e.id for e in store.query_environments(EnvironmentQuery(scope=Scope(teams=("web",))))] == [pending.id]
    assert store.query_environments(EnvironmentQuery(scope=Scope())) == []  # a scope of nothing sees nothing


def test_due_environments_most_overdue_first_and_only_open_ones(store: Store) -> None:
    soon = environment(next_action=timedelta(minutes=10))
    overdue = environment(next_action=timedelta(minutes=1))
    later = environment(next_action=timedelta(hours=5))
    ended = environment(state=EnvState.TORN_DOWN, next_action=timedelta(minutes=1))
    for env in (soon, overdue, later, ended):
        store.create_environment(env)
    assert [e.id for e in store.due_environments(NOW + timedelta(minutes=30))] == [overdue.id, soon.id]
    assert [e.id for e in store.due_environments(NOW + timedelta(minutes=30), limit=1)] == [overdue.id]


def test_update_is_guarded_by_state_and_never_changes_it(store: Store) -> None:
    env = environment()
    store.create_environment(env)
    assert store.update_environment(env.id, {"notice_sent": True}, states=[EnvState.ACTIVE]) is True
    assert store.update_environment(env.id, {"extensions": 3}, states=[EnvState.SUSPENDED]) is False
    got = store.get_environment(env.id)
    assert got is not None and got.notice_sent and got.extensions == 0
    with pytest.raises(ValueError, match="state"):
        store.update_environment(env.id, {"state": EnvState.TORN_DOWN})


def test_transition_is_a_compare_and_set_with_its_record(store: Store) -> None:
    env = environment()
    store.create_environment(env)
    d = decision(effect="teardown")
    done = store.transition_environment(env.id, [EnvState.ACTIVE, EnvState.EXPIRING], EnvState.TORN_DOWN,
                                        ts=NOW + timedelta(minutes=5), reason="ttl", decision=d,
                                        changes={"end_reason": "ttl", "ended_at": NOW + timedelta(minutes=5)})
    assert done is not None and done.state == EnvState.TORN_DOWN and done.end_reason == "ttl"
    again = store.transition_environment(env.id, [EnvState.ACTIVE], EnvState.SUSPENDED,
                                         ts=NOW + timedelta(minutes=6), reason="late")
    assert again is None  # the state had moved on: nothing written
    created, t = store.environment_transitions(env.id)  # the creation is transition 0
    assert (created.seq, created.to_state, t.seq) == (0, EnvState.ACTIVE, 1)
    assert (t.from_state, t.to_state, t.reason, t.decision_id) == (EnvState.ACTIVE, EnvState.TORN_DOWN, "ttl", d.id)
    assert store.due_environments(NOW + timedelta(days=1)) == []
