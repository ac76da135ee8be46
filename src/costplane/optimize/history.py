"""The recorded `llm.request` history the optimizer reads: decisions joined with their cost events.

Read-only. `load_history` returns a *lazy* history bound to the store: the waste detectors read it
through the store's grouped queries (`optimize.detectors.store_source.StoreSource`) and never load it as
objects; anything that reads `requests`, `events` or `outcomes` (policy replay) loads the window
then, with `Store.list_decisions`, `Store.list_events` and `Store.list_outcomes`, as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from costplane.ledger.runtypes import OutcomeRecord
from costplane.ledger.store import Store
from costplane.ledger.types import CostEvent, DecisionRecord
from costplane.ledger.windows import WindowError, parse_duration

__all__ = ["HOOK", "History", "RecordedRequest", "cache_key", "input_cache_key", "load_history",
           "parse_since"]

HOOK = "llm.request"
_ALL = 2_000_000_000  # "no limit" for the store's list queries


def parse_since(text: str) -> int:
    """'30d' -> seconds; raises ValueError naming the option on a bad value."""
    try:
        return parse_duration(text)
    except WindowError as exc:
        raise ValueError(f"--since: {exc}") from None


def cache_key(decision: DecisionRecord, events: Iterable[CostEvent] = ()) -> str | None:
    """The key the gateway's response cache would use for this request, None if it is not cacheable.

    Recorded decisions carry `cache_hash` (exact hash, set only for deterministic requests).
    Older records: the event's request hash when the recorded parameters show a deterministic
    request (temperature 0, one choice, no stream, or an embedding).
    """
    return input_cache_key(decision.input, (e.request_hash for e in events))


def input_cache_key(recorded: Mapping[str, Any], hashes: Iterable[str | None]) -> str | None:
    """`cache_key` on a decision's input and its events' request hashes (in event order)."""
    if "cache_hash" in recorded:
        value = recorded["cache_hash"]
        return value if isinstance(value, str) and value else None
    params: Mapping[str, Any] = recorded.get("params") or {}
    deterministic = recorded.get("endpoint") == "embeddings" or (
        not recorded.get("stream") and params.get("temperature") == 0 and params.get("n") in (None, 1))
    if not deterministic:
        return None
    return next((h for h in hashes if h), None)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One recorded `llm.request` decision and the cost events it led to (none if denied or failed)."""

    decision: DecisionRecord
    events: tuple[CostEvent, ...] = ()

    @property
    def ts(self) -> datetime:
        return self.decision.ts

    @property
    def admitted(self) -> bool:
        return self.decision.status_code == 200 and self.decision.effect != "deny"

    @property
    def cost_nano(self) -> int:
        return sum(e.cost_nano for e in self.events)

    @property
    def served_model(self) -> str:
        model = self.decision.result.get("model")
        if isinstance(model, str) and model:
            return model
        return self.events[0].model if self.events else str(self.decision.input.get("model", ""))

    @property
    def cached(self) -> bool:
        """Already served from the response cache (its cost is already 0)."""
        return any(e.kind == "cache_hit" for e in self.events)


class History:
    """Requests in time order, plus every cost event of the window (with or without a decision) and
    the outcomes recorded in it. Built from objects (`build`), or bound to a store (`load_history`)
    and loaded on first use of `requests`, `events` or `outcomes`."""

    __slots__ = ("_events", "_outcomes", "_requests", "_source", "since", "store", "until")

    def __init__(self, since: datetime, until: datetime, requests: Iterable[RecordedRequest] = (),
                 events: Iterable[CostEvent] = (), outcomes: Iterable[OutcomeRecord] = (), *,
                 store: Store | None = None) -> None:
        self.since, self.until, self.store = since, until, store
        self._source: Any = None  # the detectors' view of this history (optimize.detectors.source)
        self._requests: tuple[RecordedRequest, ...] | None = None
        self._events: tuple[CostEvent, ...] = ()
        self._outcomes: tuple[OutcomeRecord, ...] = ()
        if store is None:
            self._requests, self._events, self._outcomes = tuple(requests), tuple(events), tuple(outcomes)

    @property
    def seconds(self) -> int:
        return max(1, int((self.until - self.since).total_seconds()))

    @property
    def loaded(self) -> bool:
        """True when the window is held as objects (built so, or loaded from the store since)."""
        return self._requests is not None

    @property
    def requests(self) -> tuple[RecordedRequest, ...]:
        return self._load()[0]

    @property
    def events(self) -> tuple[CostEvent, ...]:
        return self._load()[1]

    @property
    def outcomes(self) -> tuple[OutcomeRecord, ...]:
        return self._load()[2]

    @property
    def source(self) -> Any:
        """The detectors' view attached by `attach` (None until then)."""
        return self._source

    def attach(self, source: Any) -> None:
        """Keep the detectors' view, so the detectors of one run share its queries."""
        self._source = source

    def _load(self) -> tuple[tuple[RecordedRequest, ...], tuple[CostEvent, ...], tuple[OutcomeRecord, ...]]:
        if self._requests is None:
            assert self.store is not None
            decisions = [d for d in self.store.list_decisions(since=self.since, limit=_ALL) if d.ts < self.until]
            events = [e for e in self.store.list_events(since=self.since, limit=_ALL) if e.ts < self.until]
            outcomes = self.store.list_outcomes(since=self.since, until=self.until)
            built = History.build(self.since, self.until, decisions, events, outcomes)
            self._requests, self._events, self._outcomes = built.requests, built.events, built.outcomes
            self._source = None  # from now on the objects are the source
        return self._requests, self._events, self._outcomes

    @classmethod
    def build(cls, since: datetime, until: datetime, decisions: Iterable[DecisionRecord],
              events: Iterable[CostEvent], outcomes: Iterable[OutcomeRecord] = ()) -> History:
        all_events = sorted(events, key=lambda e: (e.ts, e.id))
        by_decision: dict[str, list[CostEvent]] = {}
        for event in all_events:
            if event.decision_id is not None:
                by_decision.setdefault(event.decision_id, []).append(event)
        requests = [RecordedRequest(d, tuple(by_decision.get(d.id, ())))
                    for d in decisions if d.hook == HOOK]
        requests.sort(key=lambda r: (r.ts, r.decision.id))
        return cls(since, until, tuple(requests), tuple(all_events),
                   tuple(sorted(outcomes, key=lambda o: (o.ts, o.id))))


def load_history(store: Store, since: datetime, until: datetime) -> History:
    """Every `llm.request` decision, cost event and outcome with since <= ts < until — bound to the
    store and read lazily (see the module docstring)."""
    return History(since, until, store=store)
