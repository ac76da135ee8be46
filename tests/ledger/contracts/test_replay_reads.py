"""Conformance of `ReplayReads`: keyset pages over decisions and their events are complete, ordered
by (ts, id), never repeat a row, and respect the window; environment accruals sum per decision."""

from __future__ import annotations

from datetime import timedelta

from ledger_helpers import NOW, decision, event

from costplane.ledger import Store, codec
from costplane.ledger.replayqueries import DECISION_FIELDS, EVENT_FIELDS


def _seed(store: Store) -> list[str]:
    ids = []
    for i in range(7):
        d = decision(f"d{i}", ts=NOW + timedelta(seconds=i // 2))  # pairs share a timestamp: ties by id
        store.record_decision(d)
        store.record_event(event(10 + i, eid=f"e{i}", decision_id=d.id, ts=d.ts))
        ids.append(d.id)
    store.record_decision(decision("other-hook", ts=NOW))
    return ids


def test_decision_pages_cover_the_window_in_order(store: Store) -> None:
    ids = _seed(store)
    seen: list[str] = []
    after = None
    while page := store.replay_decisions(["llm.request"], since=NOW, until=NOW + timedelta(seconds=3),
                                         after=after, limit=2):
        seen += [d.id for d in page]
        after = (page[-1].ts, page[-1].id)
    expected = sorted(["other-hook", *ids[:6]], key=lambda i: (0 if i == "other-hook" else int(i[1:]) // 2, i))
    assert seen == expected  # ts < until leaves d6 (3 s) out
    rows = store.replay_decision_rows(["llm.request"], since=NOW, limit=3)
    assert [len(r) for r in rows] == [len(DECISION_FIELDS)] * 3
    assert rows[0][DECISION_FIELDS.index("ts")] == codec.to_us(NOW)


def test_event_pages_and_their_cursor(store: Store) -> None:
    _seed(store)
    seen: list[str] = []
    after = None
    while True:
        rows, last = store.replay_event_rows(since=NOW, after=after, limit=3)
        seen += [r[EVENT_FIELDS.index("id")] for r in rows]
        if last is None:
            break
        after = (int(last[EVENT_FIELDS.index("ts")]), str(last[EVENT_FIELDS.index("id")]))
    assert seen == [f"e{i}" for i in range(7)]


def test_environment_costs_sum_accruals_per_decision(store: Store) -> None:
    store.record_event(event(300, decision_id="env-d", kind="environment"))
    store.record_event(event(200, decision_id="env-d", kind="environment"))
    store.record_event(event(999, decision_id="env-d", kind="llm"))
    assert store.environment_costs(["env-d", "none"]) == {"env-d": 500}
