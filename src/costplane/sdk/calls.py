"""One instrumented LLM call: guard check, context propagation, metering and recording.

Used by `instrument.py` for every wrapped `create`, sync or async, plain or streamed.
The token bound and usage parsing are the gateway's own protocol adapters (`gateway.protocols`:
one protocol table for the gateway and the SDK); prices come from the session's `Catalog`.

In direct mode with a session that admits (a store, or a costplane server over its API), the call
is admitted by the decision core before it is sent — the bundle's policies and budgets, one
reservation of its worst case (tokens and per-use tool fees) — and settled against that
reservation: a refusal raises `SpendRefused` before any money is spent.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from costplane.attribution.context import DIMENSIONS, Context
from costplane.core.requests import Admission, LlmRequest
from costplane.gateway.protocols import adapter_named
from costplane.gateway.protocols.base import ProtocolAdapter, RequestFacts
from costplane.gateway.protocols.openai_responses import tool_call_caps
from costplane.gateway.tokens import InputSize
from costplane.ledger.types import CostEvent
from costplane.pricing.readers import (
    cap_tool_uses,
    request_conditions,
    request_units,
    tier_conditions,
    tool_use_limits,
    with_conditions,
)
from costplane.pricing.types import PriceSheet, TokenUsage, UnknownUnitPrice
from costplane.sdk.context import Frame, current_frame
from costplane.sdk.guards import RunGuard
from costplane.sdk.session import Session

__all__ = ["ANTHROPIC", "DEFAULT_MAX_TOKENS", "DEFAULT_MAX_TOOL_USES", "OPENAI", "RESPONSES", "Call", "Protocol"]

#: the output cap the SDK sets when a budgeted run's call sets none (so the worst case is a bound)
DEFAULT_MAX_TOKENS = 4096
#: the cap the SDK sets, in direct mode with admission, on a per-use-billed built-in tool without one
#: (Anthropic `max_uses`, Responses `max_tool_calls`), so the admitted worst case bounds the call
DEFAULT_MAX_TOOL_USES = 5


@dataclass(frozen=True, slots=True)
class Protocol:
    """A wrapped client's protocol: the gateway's adapter of it and where its output cap is."""

    adapter: ProtocolAdapter
    endpoint: str  # chat.completions | messages | responses
    max_token_keys: tuple[str, ...]

    @property
    def name(self) -> str:
        """The protocol family (openai | anthropic), also the provider its prices are looked up under."""
        return self.adapter.family

    def measure(self, body: Mapping[str, Any]) -> InputSize:
        return self.adapter.measure(body)

    def usage(self, usage: Mapping[str, Any] | None, response: Mapping[str, Any] | None = None) -> TokenUsage | None:
        """The usage object of a response (or of a stream's final event) as TokenUsage; `response`:
        the whole response body, where its output items carry billed units (Responses API tools)."""
        facts = RequestFacts(self.endpoint, self.endpoint, "", {}, InputSize(0, 0, 0), None, False)
        return self.adapter.usage(facts, {**(response or {}), "usage": usage})

    def tool_uses(self, body: dict[str, Any]) -> dict[str, int]:
        """The most uses of each per-use-billed tool the call can make; a built-in tool without a cap is
        given `DEFAULT_MAX_TOOL_USES` in `body` (sent so), like the gateway does."""
        if self.endpoint == "responses":
            return tool_call_caps(body, DEFAULT_MAX_TOOL_USES)
        if self.name == "anthropic":
            if isinstance(body.get("tools"), list):
                body["tools"] = list(body["tools"])  # the caller's own list is left as it was
            cap_tool_uses(body, DEFAULT_MAX_TOOL_USES)
        return tool_use_limits(body)[0]


OPENAI = Protocol(adapter_named("openai-chat"), "chat.completions", ("max_completion_tokens", "max_tokens"))
ANTHROPIC = Protocol(adapter_named("anthropic-messages"), "messages", ("max_tokens",))
RESPONSES = Protocol(adapter_named("openai-responses"), "responses", ("max_output_tokens",))


def propagation_headers(frame: Frame) -> dict[str, str]:
    """x-costplane-<dimension> / x-costplane-tag-<name> headers and the same as W3C baggage."""
    headers: dict[str, str] = {}
    baggage: list[str] = []
    values = dict(frame.values)
    if frame.node:
        values["node"] = frame.node
    for name, value in values.items():
        if name in DIMENSIONS:
            headers[f"x-costplane-{name}"] = value
            baggage.append(f"costplane.{name}={quote(value, safe='')}")
        else:
            headers[f"x-costplane-tag-{name.replace('_', '-')}"] = value
            baggage.append(f"costplane.tag.{name}={quote(value, safe='')}")
    if baggage:
        headers["baggage"] = ",".join(baggage)
    return headers


def _budgeted(guard: RunGuard | None) -> bool:
    return guard is not None and any(g.budget_nano is not None for g in guard.chain())


def _plain(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump() if callable(dump) else value


class Call:
    """The life of one call: `begin` (may raise a GuardError), then `finish` or `fail`."""

    def __init__(self, proto: Protocol, mode: str, session: Session | None, kwargs: dict[str, Any]) -> None:
        self.proto, self.mode = proto, mode
        frame = current_frame()
        self.frame = frame
        self.session = frame.session or session
        if mode == "direct" and self.session is None:
            raise RuntimeError("a direct-mode client needs a costplane Session: costplane.instrument(client, "
                               "session=costplane.Session('sqlite:///costplane.db')) or a run started with one")
        self.kwargs = dict(kwargs)
        self.model = str(kwargs.get("model", ""))
        self.stream = bool(kwargs.get("stream"))
        self.guard = frame.run.guard if frame.run is not None else None
        self.worst = 0
        self.price: PriceSheet | None = None
        self.size: InputSize | None = None
        self.hide_usage = False
        self.max_tokens: int | None = next((int(kwargs[k]) for k in proto.max_token_keys
                                            if isinstance(kwargs.get(k), int)), None)
        if mode == "gateway":
            extra = dict(propagation_headers(frame))
            extra.update(self.kwargs.get("extra_headers") or {})
            self.kwargs["extra_headers"] = extra
        elif self.stream and proto.endpoint == "chat.completions":
            options = dict(self.kwargs.get("stream_options") or {})
            self.hide_usage = not options.get("include_usage")
            self.kwargs["stream_options"] = {**options, "include_usage": True}
        if self.guard is not None:
            if _budgeted(self.guard):
                if self.max_tokens is None:
                    self.max_tokens = DEFAULT_MAX_TOKENS
                    self.kwargs[proto.max_token_keys[-1]] = DEFAULT_MAX_TOKENS
                price = self._price(self.model)
                tier = kwargs.get("service_tier")
                asked = tuple((k, v) for k, v in request_conditions(kwargs).items() if k != "service_tier")
                self.worst = price.max_cost_nano(self._size().bound, self.max_tokens,
                                                 service_tier=tier if isinstance(tier, str) else None,
                                                 conditions=asked)
            self.guard.admit_llm(self.worst, f"a {self.model} call")
        self.admission: Admission | None = None
        if mode == "direct":
            price = self._price(self.model)  # an unknown price fails before the call, never a $0 event
            unpriced = tuple(sorted(u for u in request_units(kwargs) if not price.priced(u)))
            if unpriced and self.session is not None and self.session.catalog.config.unknown_price.action != "charge":
                raise UnknownUnitPrice(self.model, self.proto.name, unpriced)
            if self.session is not None and self.session.admits:
                self._admit(self.session)
        self.started = time.perf_counter()

    def _admit(self, session: Session) -> None:
        """Direct mode with a session that admits: the bundle's policies and budgets admit the call
        before it is sent (the decision core, like the gateway); the call goes out with what was admitted."""
        uses = self.proto.tool_uses(self.kwargs)
        size = self._size()
        request = LlmRequest(self.proto.name, self.proto.endpoint, self.model, size.bound, size.estimate,
                             self.max_tokens, self.stream)
        try:
            admission = session.admit_llm(self._context(), request, tool_uses=uses)
        except Exception:
            if self.guard is not None:
                self.guard.settle_llm(self.worst, 0)
            raise
        self.admission = admission
        if self.max_tokens is None:
            self.max_tokens = admission.max_tokens
            self.kwargs[self.proto.max_token_keys[-1]] = admission.max_tokens
        if admission.model != self.model:
            self.kwargs["model"] = admission.model

    def _context(self) -> Context:
        ctx: Context = self.frame.context()
        if self.frame.node:
            ctx = ctx.with_values(tags={**ctx.tags, "node": self.frame.node})  # type: ignore[arg-type]
        return ctx

    def _size(self) -> InputSize:
        if self.size is None:
            self.size = self.proto.measure(self.kwargs)
        return self.size

    def _price(self, model: str) -> PriceSheet:
        if self.price is None or self.price.model != model:
            assert self.session is not None
            self.price = self.session.catalog.resolve(model, self.proto.name)
        return self.price

    def fail(self) -> None:
        """The call raised: nothing was charged; give the guard (and the bundle's budgets) their reservation back."""
        if self.admission is not None and self.session is not None:
            self.session.release_llm(self.admission)
        if self.guard is not None:
            self.guard.settle_llm(self.worst, 0)

    def finish(self, usage_value: Any, model: str | None, status: str = "ok", served_tier: Any = None,
               response: Any = None) -> int:
        """Meter, record (direct mode) and settle the guard; returns the cost in nano-USD.
        `served_tier` is the response's `service_tier` (OpenAI), when it has one; `response` the whole
        response (Responses API: its output items carry the built-in tools' calls)."""
        whole = _plain(response) if response is not None else None
        usage = (self.proto.usage(_plain(usage_value), whole if isinstance(whole, Mapping) else None)
                 if usage_value is not None else None)
        if usage is None:  # no silent $0: charge the bound of what may have been consumed
            usage = TokenUsage(input_tokens=self._size().bound, output_tokens=self.max_tokens or DEFAULT_MAX_TOKENS)
            status = "estimated" if status == "ok" else status
        requested = request_conditions(self.kwargs)
        if isinstance(served_tier, str):  # the response says the tier it served (maybe lower than asked)
            requested.pop("service_tier", None)
        usage = with_conditions(usage, {**requested, **tier_conditions(served_tier)})
        cost = 0
        priced_model = self.model if self.mode == "direct" else (model or self.model)
        if self.mode == "direct" or _budgeted(self.guard):
            try:
                price = self._price(priced_model)
            except LookupError:
                price = self._price(self.model)
            cost = price.cost_nano(usage)
            if price.unpriced(usage):  # a billed unit with no price: flagged, never a silent $0
                status = "unpriced" if status == "ok" else status
            if self.admission is not None and self.session is not None and self.session.settles(self.admission):
                cost = self.session.settle_llm(self.admission, usage, status=status, latency_ms=int(
                    (time.perf_counter() - self.started) * 1000)).cost_nano
            elif self.mode == "direct":
                self._record(usage, price, cost, status, priced_model)
        if self.guard is not None:
            self.guard.settle_llm(self.worst, cost)
        return cost

    def _record(self, usage: TokenUsage, price: PriceSheet, cost: int, status: str, model: str) -> None:
        assert self.session is not None
        ctx = self._context()
        rates = price.for_conditions(usage.conditions).rates(usage.input_tokens)
        event = CostEvent(
            id=f"evt_{uuid.uuid4().hex}", ts=self.session.clock(), context=ctx, provider=self.proto.name,
            model=model, cost_nano=cost, kind="llm", endpoint=self.proto.endpoint, usage=usage,
            unit_prices={k: str(v) for k, v in rates.items()},
            latency_ms=int((time.perf_counter() - self.started) * 1000), status=status,
            price_flagged=price.flagged_default or status == "unpriced", requested_model=self.model,
        )
        self.session.record(events=[event])
