"""Counted once: a call the gateway served and the client's instrumentation also exported as an
OTLP span is one cost event.

The gateway writes the call's ids on its cost event right after settling it (`submit`):
the provider's response id (`chatcmpl-…`, `msg_…`) and the trace id and parent id of the client's
`traceparent`. The receiver then

1. **before recording** asks, for every LLM span, whether the gateway already has the call
   (`lookup`: one read of the ledger per export batch): same `gen_ai.response.id`, or same trace
   id and a span id equal to the span's own or one of its children's in the batch (the HTTP client
   span that sent the `traceparent`). Such a span is **linked**: no cost event, counted in
   `SpanIngest.linked`;
2. **after recording** writes the ids of the events it did record (`link_recorded`); if the
   gateway's event arrived in between, the span's event is superseded right there.

A span that arrives **before** the gateway's ids are written (a stream, a batching delay) is
recorded and counted; when they are, the span's event is superseded: status `superseded`, cost 0,
its spend taken back from the budgets it was counted against (ledger/calls.py). Either way the
gateway's event — metered from the provider's own response — is the one that counts.

Off the request path: the gateway only appends (event id, ids) to a queue (`submit`); one
background thread writes whatever has queued up in ONE store transaction (`Store.link_calls`), so
under load many calls share a commit. `flush()` writes what is queued now (shutdown, tests).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence

from costplane.core.bundle_state import ActiveBundle
from costplane.core.claims import budget_claims
from costplane.ledger.store import Store, StoreError
from costplane.ledger.types import BudgetClaim, CallIds, CostEvent
from costplane.otel.decode import SpanData
from costplane.otel.genai import SpanIngest, response_id

__all__ = ["CallLinker"]

_log = logging.getLogger(__name__)


class CallLinker:
    """The ledger side of "counted once", for the receiver and the gateway."""

    #: the most gateway events written in one transaction
    BATCH = 256

    def __init__(self, store: Store, bundle: Callable[[], ActiveBundle]) -> None:
        self.store = store
        self._bundle = bundle
        self._queue: queue.SimpleQueue[tuple[str, CallIds]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._writing = threading.Lock()  # one batch at a time (the thread, or flush)
        self.written = 0  # gateway events whose ids were written
        self.failed = 0  # … that a store error kept from being written (logged)

    def submit(self, event_id: str, ids: CallIds) -> None:
        """The gateway settled event `event_id`: queue its ids for the background writer."""
        if not ids:
            return
        self._queue.put((event_id, ids))
        if self._thread is None:
            with self._start:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="costplane-call-ids", daemon=True)
                    self._thread.start()

    def flush(self) -> None:
        """Write everything queued so far (on the caller's thread)."""
        while not self._queue.empty():
            self._write_batch(block=False)

    def _run(self) -> None:
        while True:
            self._write_batch(block=True)

    def _write_batch(self, *, block: bool) -> None:
        with self._writing:
            batch: list[tuple[str, CallIds]] = []
            try:
                batch.append(self._queue.get(block=block, timeout=None))
                while len(batch) < self.BATCH:
                    batch.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            if not batch:
                return
            try:
                pairs = self.store.link_calls(batch, self.claims)
            except StoreError as exc:  # the calls are settled; only their ids are missing
                self.failed += len(batch)
                _log.warning("call ids of %d gateway event(s) not written: %s", len(batch), exc)
                return
            self.written += len(batch)
        for span_event, by in pairs:
            _log.info("cost event %s of an OTLP span superseded by gateway event %s (the same call)", span_event, by)

    def gateway(self, ids: CallIds, span_ids: Sequence[str]) -> str | None:
        """The id of the gateway's cost event of the call a span reports, None if it has none."""
        if not ids:
            return None
        event = self.store.find_gateway_event(ids.response_id, ids.trace_id, span_ids)
        return None if event is None else event.id

    def lookup(self, spans: Sequence[SpanData]) -> Callable[[CallIds, Sequence[str]], str | None]:
        """`gateway` for one export batch, answered from ONE read of the ledger (the gateway events
        of the batch's response ids and traces) instead of a query per span."""
        responses = sorted({rid for span in spans if (rid := response_id(span.attributes))})
        traces = sorted({span.trace_id for span in spans if span.trace_id})
        found = self.store.gateway_calls(responses, traces) if responses or traces else {}

        def gateway(ids: CallIds, span_ids: Sequence[str]) -> str | None:
            if ids.response_id and ("response", ids.response_id) in found:
                return found["response", ids.response_id]
            for span_id in span_ids if ids.trace_id else ():
                event_id = found.get(("span", f"{ids.trace_id}{span_id}"))
                if event_id is not None:
                    return event_id
            return None

        return gateway

    def link_recorded(self, result: SpanIngest) -> list[tuple[str, str]]:
        """Write the ids of the events the receiver recorded; an event whose gateway event arrived
        meanwhile is superseded. Returns (superseded event, gateway event) pairs."""
        items = [(event.id, ids) for event in result.events
                 if (ids := CallIds(event.response_id, event.trace_id, event.span_id))]
        pairs = self.store.link_calls(items, self.claims, result.call_spans) if items else []
        result.linked += len(pairs)  # recorded, then superseded: the call counts once all the same
        result.linked_calls += [(event_id.rsplit("-", 1)[-1], by) for event_id, by in pairs]
        return pairs

    def claims(self, event: CostEvent, names: Sequence[str] | None) -> Sequence[BudgetClaim]:
        """The budget claims an OTLP event was counted against: the budgets its `observed` decision
        names (`names`), else every budget that applies to an LLM call of its context; windows and
        partitions follow from the event's context and time (`core.claims.budget_claims`)."""
        active = self._bundle()
        if names is not None:
            specs = [active.budgets[name] for name in names if name in active.budgets]
        else:
            facts = {"model": event.model, "provider": event.provider, "endpoint": event.endpoint,
                     "input_tokens": event.usage.input_tokens}
            specs = list(active.engine.budgets_for("llm.request", event.context, facts))
        return budget_claims(specs, event.context, event.model, 0, event.ts)
