"""OpenTelemetry GenAI spans → run-tree nodes and priced cost events.

Attribute names are those of the current GenAI semantic conventions (`gen_ai.*`); `ALIASES` maps
older and vendor names onto them (first name present wins). Token counts follow the semconv rule
that `gen_ai.usage.input_tokens` already INCLUDES cached tokens, so cache reads/writes are
sub-counts of it, each priced once at its own rate — never added on top (exactly the `TokenUsage`
convention). An instrumentation that reports input WITHOUT cache tokens (Anthropic's API style)
is recognised when its cache tokens exceed its input tokens, or declared with the span/resource
attribute `costplane.usage.input_excludes_cache = true`; its cache tokens are then added once.

Spans become the run tree of their trace: the run is `costplane.run` (span or resource
attribute) or the trace id; a synthetic root node (id = run) holds the trace's spans, which
nest by parent span id. A span with a model whose operation is an inference (chat,
text_completion, generate_content, embeddings, … or none given) is an LLM call: priced with the
Catalog and recorded as a cost event with id `otel-<trace>-<span>` — idempotent by span id —
that hangs under its parent span's node (tag `node`). An LLM call with no token usage is never
$0 ok: it is priced from its captured content (status `estimated`) or recorded at $0 with status
`unpriced`, reported in `SpanIngest.unpriced` (the receiver's partial_success warning and the
`otlp_unpriced` alert). Spans a costplane gateway emitted for a call already in the ledger
(`costplane.event_id` + `costplane.decision_id`) are linked, not counted twice. Other spans
(invoke_agent, execute_tool, …) and LLM spans of a model with no known price are nodes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from costplane.attribution.context import DIMENSIONS, Context, validate_tag_name, validate_value
from costplane.core.notify import Notification
from costplane.ledger.runtypes import RunNode
from costplane.ledger.types import CallIds, CostEvent
from costplane.otel.aliases import ALIASES, normalise
from costplane.otel.decode import SpanData
from costplane.otel.estimate import content_usage
from costplane.pricing.readers import tier_conditions
from costplane.pricing.types import PriceSheet, TokenUsage, UnknownPrice
from costplane.pricing.units import CORE_UNITS, UNITS

__all__ = ["ALIASES", "PROVIDERS", "SpanIngest", "ingest_spans", "normalise", "response_id", "unpriced_alerts"]

#: semconv provider names -> genai-prices provider ids
PROVIDERS: dict[str, str] = {
    "openai": "openai", "anthropic": "anthropic", "azure.ai.openai": "azure", "az.ai.openai": "azure",
    "gcp.gemini": "google", "gcp.vertex_ai": "google", "gcp.gen_ai": "google", "aws.bedrock": "aws",
    "mistral_ai": "mistral", "groq": "groq", "deepseek": "deepseek", "x_ai": "x-ai", "cohere": "cohere",
}
_INVALID = re.compile(r"[^A-Za-z0-9._:/@+=-]+")
_RUN_KINDS = {"invoke_agent": "agent", "execute_tool": "tool"}
#: operations that are not a model inference even when the span names a model
_NOT_INFERENCE = frozenset({"invoke_agent", "execute_tool", "create_agent", "invoke_workflow"})


def _get(attrs: Mapping[str, Any], name: str) -> Any:
    """`attrs` is normalised: canonical names only."""
    return attrs.get(name)


def _tokens(attrs: Mapping[str, Any], name: str) -> int:
    value = _get(attrs, name)
    try:
        number = int(value) if value is not None and not isinstance(value, bool) else 0
    except (TypeError, ValueError):
        return 0
    return max(number, 0)


def _clean(value: Any) -> str | None:
    """A context value from free text: invalid characters become '-', at most 128 characters."""
    if value is None:
        return None
    text = _INVALID.sub("-", str(value)).strip("-._:/@+=")[:128]
    return text or None


def _time(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC) if ns > 0 else datetime.now(UTC)


@dataclass
class SpanIngest:
    """What one batch produced: nodes and events to store, and the spans it could not price."""

    nodes: list[RunNode] = field(default_factory=list)
    events: list[CostEvent] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # no known price: kept as `unpriced` nodes
    unpriced: list[CostEvent] = field(default_factory=list)  # no usage, no content: $0 events, status unpriced
    estimated: int = 0  # events priced from captured content
    linked: int = 0  # spans of gateway calls already in the ledger, not counted again
    #: (span id, gateway event id) of the spans linked to the gateway's event of their call
    linked_calls: list[tuple[str, str]] = field(default_factory=list)
    #: event id -> the span ids the gateway may have seen as the `traceparent` parent of the call:
    #: the span's own and its children's in this batch (the HTTP client span of the call)
    call_spans: dict[str, list[str]] = field(default_factory=dict)

    def warnings(self) -> list[str]:
        """One line per accepted-but-unpriced span, naming it and why."""
        return [f"span {e.id.rsplit('-', 1)[-1]} (trace {e.context.trace}, model {e.model!r}): no token usage and "
                "no captured content; recorded as unpriced, not charged" for e in self.unpriced]


def _prefixed(attrs: Mapping[str, Any], clean: Callable[[Any], str | None]) -> dict[str, str]:
    """`costplane.<dimension>` / `costplane.tag.<name>` attributes as context values."""
    out: dict[str, str] = {}
    for name, raw in attrs.items():
        if name.startswith("costplane.") and name != "costplane.run":
            dim = name[len("costplane."):]
            value = clean(raw)
            if value and (dim in DIMENSIONS or dim.startswith("tag.")):
                out[dim[4:] if dim.startswith("tag.") else dim] = value
    return out


class _Batch:
    """Per-batch caches: cleaned values, resource-level context, ancestors' agent/conversation,
    validated (name, value) pairs — the same few values recur in every span of a batch."""

    def __init__(self, spans: Sequence[SpanData], bound: Mapping[str, str], key_id: str | None) -> None:
        self.by_id = {s.span_id: s for s in spans}
        self._children: dict[str, list[str]] | None = None
        self.bound, self.key_id = bound, key_id
        self._clean: dict[Any, str | None] = {}
        self._resources: dict[int, dict[str, str]] = {}
        self._inherited: dict[str, dict[str, str]] = {}
        self._valid: set[tuple[str, str]] = set()

    def call_spans(self, span: SpanData) -> list[str]:
        """The span's id and its children's in this batch."""
        if self._children is None:
            self._children = {}
            for other in self.by_id.values():
                if other.parent_span_id:
                    self._children.setdefault(other.parent_span_id, []).append(other.span_id)
        return [span.span_id, *self._children.get(span.span_id, ())]

    def clean(self, value: Any) -> str | None:
        if value is None:
            return None
        key = value if isinstance(value, str | int) else str(value)
        if key not in self._clean:
            self._clean[key] = _clean(value)
        return self._clean[key]

    def own(self, span: SpanData) -> dict[str, str]:
        """agent / conversation a span itself names."""
        out: dict[str, str] = {}
        for name, target in (("gen_ai.agent.name", "agent"), ("gen_ai.conversation.id", "conversation")):
            value = self.clean(span.attributes.get(name))
            if value:
                out[target] = value
        return out

    def inherited(self, span: SpanData) -> dict[str, str]:
        """agent / conversation of the nearest ancestors present in this batch."""
        chain: list[SpanData] = []
        parent = self.by_id.get(span.parent_span_id)
        while parent is not None and parent.span_id not in self._inherited and len(chain) < 256:
            chain.append(parent)
            self._inherited[parent.span_id] = {}  # a cycle ends here
            parent = self.by_id.get(parent.parent_span_id)
        values = dict(self._inherited[parent.span_id]) if parent is not None else {}
        for ancestor in reversed(chain):
            values = {**values, **self.own(ancestor)}
            self._inherited[ancestor.span_id] = values
        return values

    def resource(self, span: SpanData) -> dict[str, str]:
        found = self._resources.get(id(span.resource))
        if found is None:
            found = _prefixed(span.resource, self.clean)
            service = self.clean(span.resource.get("service.name"))
            if service:
                found.setdefault("service", service)
            self._resources[id(span.resource)] = found
        return found

    def context(self, span: SpanData, run: str, node: str | None = None) -> Context:
        values = {**self.inherited(span), **self.resource(span), **_prefixed(span.attributes, self.clean),
                  **self.own(span)}
        if span.attributes.get("gen_ai.operation.name") == "execute_tool":
            tool = self.clean(span.attributes.get("gen_ai.tool.name"))
            if tool:
                values["tool"] = tool
        values.update(run=run, trace=span.trace_id)
        if node is not None:
            values["node"] = node
        values.update(self.bound)  # a key's bound attributes can never be overridden
        dims: dict[str, str] = {}
        tags: dict[str, str] = {}
        for name, value in values.items():
            if (name, value) not in self._valid:
                where = f"span {span.span_id} attribute {name}"
                validate_value(where, value)
                if name not in DIMENSIONS:
                    validate_tag_name(where, name)
                self._valid.add((name, value))
            (dims if name in DIMENSIONS else tags)[name] = value
        return Context(**dims, tags=tags, key_id=self.key_id)


def ingest_spans(spans: Sequence[SpanData], price: Callable[[str, str | None, datetime], PriceSheet],
                 bound: Mapping[str, str] = {}, key_id: str | None = None,
                 linked: Callable[[str, str], bool] | None = None,
                 gateway: Callable[[CallIds, Sequence[str]], str | None] | None = None) -> SpanIngest:
    """Turn a batch of spans into nodes and priced events. `price(model, provider, at)` is
    `Catalog.resolve` (raises UnknownPrice); `linked(event_id, decision_id)` says whether a
    gateway-emitted span's call is already in the ledger; `gateway(ids, span_ids)` is the id of
    the gateway's cost event of the call an LLM span reports (by `gen_ai.response.id`, or by trace
    id and one of `span_ids`), None if the gateway has not recorded it."""
    out = SpanIngest()
    spans = [s if s.normalised else replace(s, attributes=normalise(s.attributes), normalised=True) for s in spans]
    batch = _Batch(spans, bound, key_id)
    rates: dict[int, tuple[PriceSheet, dict[str, str]]] = {}
    roots: dict[str, RunNode] = {}
    for span in spans:
        if linked is not None and _is_linked(span.attributes, linked):
            out.linked += 1
            continue
        run = batch.clean(span.attributes.get("costplane.run") or span.resource.get("costplane.run")) or span.trace_id
        operation = str(_get(span.attributes, "gen_ai.operation.name") or "")
        model = _get(span.attributes, "gen_ai.response.model") or _get(span.attributes, "gen_ai.request.model")
        is_llm = bool(model) and operation not in _NOT_INFERENCE
        parent = span.parent_span_id or run
        # an LLM call is a leaf: its cost event hangs under its parent's node (tag `node`), no node of its own
        ctx = batch.context(span, run, parent if is_llm else None)
        started, ended = _time(span.start_ns), _time(span.end_ns)
        if run not in roots:
            name = batch.clean(span.resource.get("service.name")) or run
            roots[run] = RunNode(id=run, run=run, kind="run", name=name, started_at=started, status="ok",
                                 context=Context(trace=span.trace_id, run=run, tags={k: v for k, v in ctx.tags.items()
                                                                                      if k == "service"}))
        attributes: dict[str, Any] = {"span_id": span.span_id, "operation": operation}
        status = "error" if span.error else "ok"
        if is_llm:
            ids = CallIds(response_id(span.attributes), span.trace_id, span.span_id)
            spans_of_call = batch.call_spans(span)
            found = gateway(ids, spans_of_call) if gateway is not None else None
            if found is not None:  # the gateway counted this call: linked, not counted again
                out.linked += 1
                out.linked_calls.append((span.span_id, found))
                continue
            event, problem = _event(span, ctx, str(model), price, ended, rates)
            if event is not None:
                event = replace(event, response_id=ids.response_id, trace_id=ids.trace_id, span_id=ids.span_id)
                out.call_spans[event.id] = spans_of_call
                if event.status == "unpriced":
                    out.unpriced.append(event)
                elif event.status == "estimated":
                    out.estimated += 1
                out.events.append(event)
                continue
            out.rejected.append(problem)  # kept as a node, so the tree shows the unpriced call
            attributes["unpriced"] = problem
            status = "unpriced"
        kind = "llm" if is_llm else _RUN_KINDS.get(operation, "span")
        out.nodes.append(RunNode(id=span.span_id, run=run, kind=kind, name=span.name or operation or kind,
                                 started_at=started, parent_id=parent, ended_at=ended, status=status, context=ctx,
                                 attributes=attributes))
    out.nodes[:0] = roots.values()
    return out


def response_id(attrs: Mapping[str, Any]) -> str | None:
    """`gen_ai.response.id`; else the `id` of the response JSON an instrumentation records as its
    output (OpenInference's `output.value` with `output.mime_type` application/json)."""
    value = attrs.get("gen_ai.response.id")
    if value is None and attrs.get("output.mime_type") == "application/json":
        output = attrs.get("gen_ai.output.messages", attrs.get("output.value"))  # normalised or not
        if isinstance(output, str) and output.startswith("{"):
            try:
                parsed = orjson.loads(output)
            except orjson.JSONDecodeError:
                parsed = None
            value = parsed.get("id") if isinstance(parsed, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 256 else None


def _is_linked(attrs: Mapping[str, Any], linked: Callable[[str, str], bool]) -> bool:
    event_id, decision_id = attrs.get("costplane.event_id"), attrs.get("costplane.decision_id")
    return isinstance(event_id, str) and isinstance(decision_id, str) and linked(event_id, decision_id)


def _flag(attrs: Mapping[str, Any], resource: Mapping[str, Any], name: str) -> bool:
    value = attrs.get(name, resource.get(name))
    return value is True or str(value).lower() in ("true", "1", "yes")


def _usage(span: SpanData) -> tuple[TokenUsage | None, str]:
    """(usage, status): reported usage ("ok"), else counted from captured content ("estimated"),
    else (None, "unpriced")."""
    attrs = span.attributes
    input_tokens = _tokens(attrs, "gen_ai.usage.input_tokens")
    output_tokens = _tokens(attrs, "gen_ai.usage.output_tokens")
    if not (input_tokens or output_tokens):
        counted = content_usage(attrs)
        return (counted, "estimated") if counted is not None and counted.total_tokens else (None, "unpriced")
    cache_read = _tokens(attrs, "gen_ai.usage.cache_read.input_tokens")
    cache_write = _tokens(attrs, "gen_ai.usage.cache_write.input_tokens")
    reasoning = min(_tokens(attrs, "gen_ai.usage.reasoning.output_tokens"), output_tokens)
    if cache_read + cache_write > input_tokens or _flag(attrs, span.resource, "costplane.usage.input_excludes_cache"):
        input_tokens += cache_read + cache_write  # reported WITHOUT cache tokens: added back once
    units, conditions = _extras(attrs)
    if units or conditions:
        try:
            return TokenUsage(input_tokens, output_tokens, cache_read, cache_write, reasoning, units,
                              conditions), "ok"
        except ValueError:  # inconsistent extra counts: the core counts still price the call
            pass
    return TokenUsage(input_tokens, output_tokens, cache_read, cache_write, reasoning), "ok"


_UNIT_PREFIX, _CONDITION_PREFIX = "costplane.usage.", "costplane.usage.condition."


def _extras(attrs: Mapping[str, Any]) -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, str], ...]]:
    """Billed units beyond the core token counts (`costplane.usage.<unit>`, as costplane's gateway
    spans carry them) and price conditions (`costplane.usage.condition.<name>`, the served
    `openai.response.service_tier`)."""
    tier = attrs.get("openai.response.service_tier") or attrs.get("gen_ai.openai.response.service_tier")
    conditions = tier_conditions(None if tier == "default" else tier)  # OpenAI's name for the standard tier
    units: dict[str, int] = {}
    for key, value in attrs.items():
        if not key.startswith(_UNIT_PREFIX):
            continue
        if key.startswith(_CONDITION_PREFIX):
            if value not in (None, ""):
                conditions[key[len(_CONDITION_PREFIX):]] = str(value)
            continue
        name = key[len(_UNIT_PREFIX):]
        if name in UNITS and name not in CORE_UNITS and isinstance(value, int) and not isinstance(value, bool):
            units[name] = value
    return tuple(units.items()), tuple(conditions.items())


def _event(span: SpanData, ctx: Context, model: str, price: Callable[[str, str | None, datetime], PriceSheet],
           at: datetime, rates: dict[int, tuple[PriceSheet, dict[str, str]]]) -> tuple[CostEvent | None, str]:
    attrs = span.attributes
    usage, status = _usage(span)
    raw_provider = _get(attrs, "gen_ai.provider.name")
    provider = PROVIDERS.get(str(raw_provider), str(raw_provider)) if raw_provider else None
    requested = _get(attrs, "gen_ai.request.model")
    operation = str(_get(attrs, "gen_ai.operation.name") or "chat")
    latency = max(0, (span.end_ns - span.start_ns) // 1_000_000)
    if usage is None:  # nothing to price: say so, never $0 ok
        return CostEvent(
            id=f"otel-{span.trace_id}-{span.span_id}", ts=at, context=ctx, provider=str(raw_provider or ""),
            model=model, cost_nano=0, kind="llm", endpoint=operation, latency_ms=latency, status="unpriced",
            requested_model=str(requested) if requested else None), ""
    sheet = None
    for candidate in dict.fromkeys([model, str(requested) if requested else model]):
        try:
            sheet = price(candidate, provider, at)
            model = candidate
            break
        except UnknownPrice:
            continue
    if sheet is None:
        return None, f"span {span.span_id}: no known price for model {model!r} (provider {provider!r}); not charged"
    missing = sheet.unpriced(usage) if usage.units else ()
    if missing:  # a billed unit with no price is an unknown price too, never a silent $0 part
        return None, f"span {span.span_id}: no known price for {', '.join(missing)} of model {model!r}; not charged"
    if status == "ok" and attrs.get("costplane.status") in ("estimated", "cut"):
        status = str(attrs["costplane.status"])  # a costplane gateway's span: its usage was a bound / partial
    if span.error and status == "ok":
        status = "error"
    return CostEvent(
        id=f"otel-{span.trace_id}-{span.span_id}", ts=at, context=ctx, provider=str(raw_provider or provider or ""),
        model=model, cost_nano=sheet.cost_nano(usage), kind="llm", endpoint=operation, usage=usage,
        unit_prices=_unit_prices(sheet, usage.input_tokens, rates), latency_ms=latency, status=status,
        price_flagged=sheet.flagged_default, requested_model=str(requested) if requested else None,
    ), ""


def unpriced_alerts(result: SpanIngest) -> list[Notification]:
    """One `otlp_unpriced` alert per (service, model) of the batch; the webhook notifier
    de-duplicates them per UTC day."""
    groups: dict[tuple[str, str], list[CostEvent]] = {}
    for event in result.unpriced:
        groups.setdefault((event.context.tags.get("service", ""), event.model), []).append(event)
    out: list[Notification] = []
    for (service, model), events in groups.items():
        subject = f"{service or 'unknown service'}/{model}"
        spans = ", ".join(e.id.rsplit("-", 1)[-1] for e in events[:5])
        message = (f"{len(events)} GenAI span(s) of model {model!r} from {service or 'an unnamed service'} carried "
                   f"no token usage and no captured content, so they are recorded unpriced ($0, status unpriced), "
                   f"e.g. span(s) {spans}. Enable usage in streamed calls (stream_options.include_usage) or "
                   "content capture, or route the calls through the gateway.")
        out.append(Notification("otlp_unpriced", subject, message, "", {
            "service": service, "model": model, "spans": len(events), "day": events[0].ts.date().isoformat(),
            "example_spans": [e.id for e in events[:5]]}))
    return out


def _unit_prices(sheet: PriceSheet, input_tokens: int, cache: dict[int, tuple[PriceSheet, dict[str, str]]]
                 ) -> dict[str, str]:
    """The rates as text; cached per sheet (within a batch) when it has no tiers."""
    if sheet.tiers:
        return {k: str(v) for k, v in sheet.rates(input_tokens).items()}
    hit = cache.get(id(sheet))
    if hit is None or hit[0] is not sheet:
        hit = cache[id(sheet)] = (sheet, {k: str(v) for k, v in sheet.rates(0).items()})
    return hit[1]

