"""The recorded history streamed from the store in (ts, id) pages, in bounded memory.

`iter_decisions` pages through the decisions log of some hooks. `iter_requests` joins each
`llm.request` decision with its cost events without an index on `cost_events.decision_id`: both
tables are read in time order and merged. An event is written when its request settles, at or after
the decision's time and — the gateway bounds every upstream call — within `lag` of it; so the events
of a page of decisions are all read once the event cursor passes the page's last decision time plus
`lag`. Events read ahead wait in a buffer keyed by decision id; an event whose decision has already
gone by (another hook's, e.g. an environment accrual, or outside the window) is dropped. Memory holds
one page of decisions plus the events of `lag` + one page of time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from costplane.attribution.context import Context
from costplane.config import Config
from costplane.ledger.contracts_analytics import ReplayReads
from costplane.ledger.queries import Row
from costplane.ledger.replayqueries import decode_context
from costplane.ledger.types import DecisionRecord
from costplane.optimize.history import HOOK
from costplane.optimize.replay_request import ReplayRequest, from_rows

__all__ = ["DEFAULT_BATCH", "event_lag", "iter_decisions", "iter_requests"]

DEFAULT_BATCH = 5000
_CONTEXTS = 10_000  # decoded contexts kept across pages (most requests share a few; runs add more)


def event_lag(config: Config) -> timedelta:
    """How long after its decision a request's cost event can be written: the upstream call's limit
    (a stream that is cut is settled then) or the reservation's expiry, whichever is later, plus a minute."""
    gateway = config.gateway
    return timedelta(seconds=max(gateway.upstream_timeout, gateway.reservation_ttl) + 60)


def iter_decisions(store: ReplayReads, hooks: Sequence[str], since: datetime, until: datetime, *,
                   batch: int = DEFAULT_BATCH) -> Iterator[DecisionRecord]:
    """Every decision of `hooks` with since <= ts < until, oldest first by (ts, id), one page at a time."""
    after: tuple[datetime, str] | None = None
    while True:
        page = store.replay_decisions(hooks, since=since, until=until, after=after, limit=batch)
        yield from page
        if len(page) < batch:
            return
        after = (page[-1].ts, page[-1].id)


class _EventCursor:
    """Cost-event rows in (ts, id) order, read a page at a time up to a horizon, buffered by decision id.
    Times are the store's integer microseconds."""

    def __init__(self, store: ReplayReads, since: datetime, until: datetime, batch: int) -> None:
        self.store, self.since, self.until, self.batch = store, since, until, batch
        self.after: tuple[int, str] | None = None
        self.read_to: int | None = None  # every event with ts <= this has been read
        self.done = False
        self.by_decision: dict[str, list[Row]] = {}
        self.order: deque[tuple[int, str]] = deque()  # (ts, decision id) as read, for pruning

    def fill(self, horizon: int) -> None:
        """Read until every event with ts <= horizon is buffered (or there are no more)."""
        while not self.done and (self.read_to is None or self.read_to < horizon):
            page, last = self.store.replay_event_rows(since=self.since, until=self.until, after=self.after,
                                                      limit=self.batch)
            buffered, order = self.by_decision, self.order
            for row in page:
                decision_id = row[10]  # EVENT_FIELDS
                events = buffered.get(decision_id)
                if events is None:
                    buffered[decision_id] = [row]
                    order.append((row[1], decision_id))
                else:
                    events.append(row)
            if last is None:
                self.done = True
            else:
                self.after = (last[1], last[0])
                # the page may end inside a run of equal ts: only earlier instants are complete
                self.read_to = last[1] - 1

    def take(self, decision_id: str) -> list[Row]:
        return self.by_decision.pop(decision_id, None) or []

    def prune(self, before: int) -> None:
        """Drop buffered events older than `before`: their decisions (ts <= event ts) have all gone by."""
        order, buffered = self.order, self.by_decision
        while order and order[0][0] < before:
            buffered.pop(order.popleft()[1], None)

    @property
    def buffered(self) -> int:
        return len(self.by_decision)


def iter_requests(store: ReplayReads, since: datetime, until: datetime, *, lag: timedelta,
                  batch: int = DEFAULT_BATCH) -> Iterator[ReplayRequest]:
    """Every recorded `llm.request` with since <= ts < until and its cost events, oldest first by
    (ts, id), as replay's own records; reads the store in pages of `batch` rows (see the module
    docstring for `lag`)."""
    events = _EventCursor(store, since, until + lag, batch)
    lag_us = lag // timedelta(microseconds=1)
    contexts: dict[str, Context] = {}  # by the context column's text, across pages (bounded)
    after: tuple[int, str] | None = None
    while True:
        page = store.replay_decision_rows((HOOK,), since=since, until=until, after=after, limit=batch)
        if not page:
            return
        last = page[-1][1]
        events.fill(last + lag_us)
        if len(contexts) > _CONTEXTS:
            contexts.clear()
        for row in page:
            yield from_rows(row, decode_context(row[4], contexts), events.take(row[0]))  # DECISION_FIELDS
        events.prune(last)
        if len(page) < batch:
            return
        after = (last, page[-1][0])
