"""Counted once: a call the gateway served and the client's instrumentation also exported as an
OTLP span is one cost event.

The gateway's settlement writes the call's ids with its cost event: the provider's response id
(`chatcmpl-…`, `msg_…`) and the trace id and parent id of the client's `traceparent`. The receiver then

1. **before recording** asks, for every LLM span, whether the gateway already has the call
   (`lookup`: one read of the ledger per export batch): same `gen_ai.response.id`, or same trace
   id and a span id equal to the span's own or one of its children's in the batch (the HTTP client
   span that sent the `traceparent`). Such a span is **linked**: no cost event, counted in
   `SpanIngest.linked`;
2. **after recording** writes the ids of the events it did record (`link_recorded`); if the
   gateway's event arrived in between, the span's event is superseded right there.

A span that arrives **before** the gateway's event (a stream, a batching delay) is recorded and
counted; when the gateway's event is settled, the span's event is superseded: status `superseded`, cost 0,
its spend taken back from the budgets it was counted against (ledger/calls.py). Either way the
gateway's event — metered from the provider's own response — is the one that counts.

The gateway's side needs no writer of its own: `DecisionCore.settle` puts the call's ids on the
cost event and the settlement's INSERT writes them; in the same transaction it supersedes an OTLP
event of the call recorded earlier (ledger/calls.py `reconcile`, from the counter rows the OTLP
event was added to).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from costplane.core.bundle_state import ActiveBundle
from costplane.core.claims import budget_claims
from costplane.ledger.store import Store
from costplane.ledger.types import BudgetClaim, CallIds, CostEvent
from costplane.otel.decode import SpanData
from costplane.otel.genai import SpanIngest, response_id

__all__ = ["CallLinker"]


class CallLinker:
    """The ledger side of "counted once", for the OTLP receiver."""

    def __init__(self, store: Store, bundle: Callable[[], ActiveBundle]) -> None:
        self.store = store
        self._bundle = bundle

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
