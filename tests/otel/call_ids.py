"""Waiting for the gateway's call ids: its background writer stores them just after settlement."""

from __future__ import annotations

import time

from costplane.ledger import CostEvent, Store


def wait_for_ids(store: Store, calls: int = 1, deadline_s: float = 20.0) -> CostEvent:
    """The newest gateway event, once the last `calls` gateway events all have their ids
    (polls; fails after `deadline_s`, a bound far above the milliseconds it takes)."""
    end = time.monotonic() + deadline_s
    while True:
        events = [e for e in store.list_events(limit=50) if not e.id.startswith("otel-")]
        if len(events) >= calls and all(e.response_id for e in events[:calls]):
            return events[0]
        if time.monotonic() > end:
            raise AssertionError(f"gateway events without call ids after {deadline_s}s: {events[:calls]}")
        time.sleep(0.01)
