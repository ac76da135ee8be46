"""The recorded `llm.request` history the optimizer reads: decisions joined with their cost events.

Read-only: `load_history` only calls `Store.list_decisions` and `Store.list_events`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from costplane.ledger.store import Store
from costplane.ledger.types import CostEvent, DecisionRecord
from costplane.ledger.windows import WindowError, parse_duration

__all__ = ["HOOK", "History", "RecordedRequest", "cache_key", "load_history", "parse_since", "protocol_of"]

HOOK = "llm.request"
_ALL = 2_000_000_000  # "no limit" for the store's list queries


def parse_since(text: str) -> int:
    """'30d' -> seconds; raises ValueError naming the option on a bad value."""
    try:
        return parse_duration(text)
    except WindowError as exc:
        raise ValueError(f"--since: {exc}") from None


def protocol_of(decision: DecisionRecord) -> str:
    """The wire protocol of a recorded request (recorded since the optimizer; else from the endpoint)."""
    protocol = decision.input.get("protocol")
    if isinstance(protocol, str) and protocol:
        return protocol
    return "anthropic" if decision.input.get("endpoint") == "messages" else "openai"


def cache_key(decision: DecisionRecord, events: Iterable[CostEvent] = ()) -> str | None:
    """The key the gateway's response cache would use for this request, None if it is not cacheable.

    Recorded decisions carry `cache_hash` (exact hash, set only for deterministic requests).
    Older records: the event's request hash when the recorded parameters show a deterministic
    request (temperature 0, one choice, no stream, or an embedding).
    """
    if "cache_hash" in decision.input:
        value = decision.input["cache_hash"]
        return value if isinstance(value, str) and value else None
    params: Mapping[str, Any] = decision.input.get("params") or {}
    deterministic = decision.input.get("endpoint") == "embeddings" or (
        not decision.input.get("stream") and params.get("temperature") == 0 and params.get("n") in (None, 1))
    if not deterministic:
        return None
    return next((e.request_hash for e in events if e.request_hash), None)


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


@dataclass(frozen=True, slots=True)
class History:
    """Requests in time order, plus every cost event of the window (with or without a decision)."""

    since: datetime
    until: datetime
    requests: tuple[RecordedRequest, ...]
    events: tuple[CostEvent, ...] = field(default=())

    @property
    def seconds(self) -> int:
        return max(1, int((self.until - self.since).total_seconds()))

    @classmethod
    def build(cls, since: datetime, until: datetime, decisions: Iterable[DecisionRecord],
              events: Iterable[CostEvent]) -> History:
        all_events = sorted(events, key=lambda e: (e.ts, e.id))
        by_decision: dict[str, list[CostEvent]] = {}
        for event in all_events:
            if event.decision_id is not None:
                by_decision.setdefault(event.decision_id, []).append(event)
        requests = [RecordedRequest(d, tuple(by_decision.get(d.id, ())))
                    for d in decisions if d.hook == HOOK]
        requests.sort(key=lambda r: (r.ts, r.decision.id))
        return cls(since, until, tuple(requests), tuple(all_events))


def load_history(store: Store, since: datetime, until: datetime) -> History:
    """Every `llm.request` decision and cost event with since <= ts < until."""
    decisions = [d for d in store.list_decisions(since=since, limit=_ALL) if d.ts < until]
    events = [e for e in store.list_events(since=since, limit=_ALL) if e.ts < until]
    return History.build(since, until, decisions, events)
