"""The environment store methods on SQLite and PostgreSQL, and the scheduler's leader lock on PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from costplane.attribution.context import Context
from costplane.ledger import open_store
from costplane.ledger.envtypes import EnvironmentRecord, EnvState
from costplane.lifecycle.leadership import Leadership
from costplane.lifecycle.scheduler import Scheduler

from .helpers import make_core

SMALL = Context(team="small", owner="carol")
HOURLY = 96_000_000  # aws/m6i.large


def test_environments_accrue_grow_and_transitions(store_url: Callable[[], str], tmp_path: Path) -> None:
    store = open_store(store_url())
    core = make_core(tmp_path, store=store)
    try:
        env = core.launch(SMALL, "noop-box", {}, ttl=3600)
        assert isinstance(env, EnvironmentRecord) and env.started_at is not None and env.reservation_id
        got = store.get_environment(env.id)
        assert got is not None and got.context == env.context and got.resources == env.resources
        assert got.projected_nano == HOURLY and dict(got.lifecycle)["max_ttl"] == 7200
        assert [e.id for e in store.list_environments(states=(EnvState.ACTIVE,))] == [env.id]
        assert store.list_environments(states=(EnvState.TORN_DOWN,)) == []
        assert [e.id for e in store.due_environments(env.started_at + timedelta(seconds=1))] == [env.id]
        assert store.update_environment(env.id, {"next_action_at": env.expires_at})
        assert store.due_environments(env.started_at + timedelta(seconds=1)) == []
        assert not store.update_environment(env.id, {"extensions": 0}, states=(EnvState.SUSPENDED,))
        with pytest.raises(ValueError, match="cannot be changed"):
            store.update_environment(env.id, {"state": "x"})

        half = env.started_at + timedelta(minutes=30)
        assert core.accrue(env, half) == HOURLY // 2
        assert core.accrue(store.get_environment(env.id), half) == 0  # type: ignore[arg-type]
        reservation = store.get_reservation(env.reservation_id)
        assert reservation is not None and reservation.status == "open"
        [state] = store.claim_states(reservation.claims)
        assert (state.spent_nano, state.reserved_nano) == (HOURLY // 2, HOURLY // 2)

        extended = core.extend(env.id, SMALL, by=3600)
        assert isinstance(extended, EnvironmentRecord) and extended.projected_nano == 2 * HOURLY
        [state] = store.claim_states(store.get_reservation(env.reservation_id).claims)  # type: ignore[union-attr]
        assert (state.spent_nano, state.reserved_nano) == (HOURLY // 2, HOURLY // 2 + HOURLY)
        refused = store.grow_reservation(env.reservation_id, 10**9, extended.expires_at)  # 1 USD more: over
        assert not refused.ok and refused.refused is not None and refused.refused.budget == "team-small"
        [after] = store.claim_states(store.get_reservation(env.reservation_id).claims)  # type: ignore[union-attr]
        assert after.reserved_nano == state.reserved_nano  # nothing written

        ended = core.teardown(env.id, "by hand")
        assert isinstance(ended, EnvironmentRecord) and ended.state == EnvState.TORN_DOWN
        assert ended.accrued_nano == sum(e.cost_nano for e in store.list_events() if e.kind == "environment")
        closed = store.get_reservation(env.reservation_id)
        assert closed is not None and closed.status == "settled"
        [final] = store.claim_states(closed.claims)
        assert final.reserved_nano == 0 and final.spent_nano == ended.accrued_nano
        moves = [(t.from_state, t.to_state) for t in store.environment_transitions(env.id)]
        assert moves == [("", "active"), ("active", "active"), ("active", "torn_down")]
        assert store.transition_environment(env.id, (EnvState.ACTIVE,), EnvState.TORN_DOWN,
                                            ts=half, reason="again") is None  # compare-and-set
        assert store.due_environments(datetime.max.replace(year=9000, tzinfo=half.tzinfo)) == []
    finally:
        store.close()


@pytest.mark.postgres
def test_leader_lock_exactly_one_scheduler_acts(store_url: Callable[[], str], store_kind: str,
                                                tmp_path: Path) -> None:
    url = store_url()
    store = open_store(url)
    core = make_core(tmp_path, store=store)
    env = core.launch(SMALL, "noop-box", {}, ttl=1)
    assert isinstance(env, EnvironmentRecord)
    first, second = Scheduler(core, Leadership(url)), Scheduler(core, Leadership(url))
    try:
        now = env.expires_at + timedelta(seconds=1)
        core.clock = lambda: now
        looked = [first.tick(), second.tick(), first.tick(), second.tick()]
        assert first.is_leader != second.is_leader  # exactly one holds the lock
        leader, follower = (first, second) if first.is_leader else (second, first)
        assert looked[0 if leader is first else 1] == 1 and 0 in looked
        for _ in range(5):
            follower.tick()
        assert not follower.is_leader and follower.leadership is not None
        if store_kind == "postgres":  # a follower waits on the lock: one connection, no statement per tick
            assert follower.leadership.connections == 1
        leader.close()  # waits for its teardown
        assert [t.to_state for t in store.environment_transitions(env.id)].count(EnvState.TORN_DOWN) == 1
        if store_kind == "postgres":  # the waiting follower takes the lock without a tick
            deadline = time.monotonic() + 10
            while not follower.leadership.held and time.monotonic() < deadline:
                time.sleep(0.01)
            assert follower.leadership.held
        follower.tick()
        assert follower.is_leader  # the lock passes on when the leader goes away
    finally:
        first.close()
        second.close()
        store.close()
