"""DecisionCore: the `llm.request` adapter over the one decider (`core/decider.py`).

It knows no HTTP. What is LLM-specific lives here: which provider serves a model (and the model a
route picks), the price sheet, the `max_tokens` sent upstream, the worst-case bound the budgets
hold, the loop guard, route-on-exceed and the response cache. Policy, SLO effects, budget claims,
the one atomic reservation, the decision record (with the exact evaluated input) and
notifications are the decider's. Settlement, release and cache hits go through the decider too,
so threshold alerts fire on every path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from costplane.attribution.context import Context
from costplane.config import Config, ProviderConfig
from costplane.core.bundle_state import ActiveBundle
from costplane.core.decider import Decider, Evaluation, Hold, Refused, Reserved, new_id
from costplane.core.notify import Notification, Notifier
from costplane.core.requests import Admission, Denial, LlmRequest, Settlement, tightest_remaining
from costplane.core.spend import SpendRecord, record_spend
from costplane.ledger.contracts import BudgetLedger
from costplane.ledger.store import CachedResponse, Store
from costplane.ledger.types import CallIds, CostEvent, Reservation
from costplane.policy.types import PolicyDecision
from costplane.pricing.catalog import Catalog
from costplane.pricing.readers import with_conditions
from costplane.pricing.types import PriceSheet, TokenUsage, UnknownPrice

if TYPE_CHECKING:  # core.slo imports the policy engine; only its type is needed here
    from costplane.core.slo import SloGate

__all__ = ["DecisionCore", "LlmHold", "admit_arguments", "new_id"]

log = logging.getLogger("costplane.core")

HOOK = "llm.request"
#: the endpoints of chat calls, which a route may send to another vendor (the gateway translates them)
_CHAT_ENDPOINTS = frozenset({"chat.completions", "messages", "responses", "generate_content"})
_CONDITION_PARAMS = ("service_tier", "processing", "speed")  # request facts that select a price variant


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class LlmHold(Hold):
    """An LLM call's hold: the worst case plus where and how the call is sent."""

    provider: ProviderConfig | None = None
    price: PriceSheet | None = None
    max_tokens: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    model: str = ""


def admit_arguments(recorded: Mapping[str, Any]) -> tuple[LlmRequest, dict[str, int], dict[str, str]]:
    """`DecisionCore.admit`'s arguments rebuilt from a logged `llm.request` decision's input (a call
    admitted in the SDK's direct mode has `input.direct` true: re-decide it with `admit_direct`)."""
    uses = recorded.get("tool_uses")
    open_ended = recorded.get("uncapped")
    return (LlmRequest.from_decision_input(recorded),
            {str(k): int(v) for k, v in uses.items()} if isinstance(uses, Mapping) else {},
            {str(k): str(v) for k, v in open_ended.items()} if isinstance(open_ended, Mapping) else {})


class DecisionCore:
    """`ledger`: the budget counters (the store today; an in-memory ledger for replay);
    `store`: the response cache and the gateway's call links (None: no cache, e.g. in replay)."""

    def __init__(
        self,
        config: Config,
        ledger: BudgetLedger,
        catalog: Catalog,
        bundle: Callable[[], ActiveBundle],
        clock: Callable[[], datetime] = _utcnow,
        notifier: Notifier | None = None,
        slo_gate: SloGate | None = None,
        *,
        store: Store | None = None,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self._store = store
        self.catalog = catalog
        self._bundle = bundle
        self._clock = clock
        self.decider = Decider(ledger, bundle, clock=clock, notifier=notifier, slo_gate=slo_gate)
        self.notifier: Notifier = self.decider.notifier
        self.slo_gate = slo_gate  # breached economic SLOs (core/slo.py); None: no SLO effects

    @property
    def store(self) -> Store:
        """The store behind the response cache and call links (the gateway's)."""
        if self._store is None:
            raise RuntimeError("this decision core was built without a store (no response cache, no call links)")
        return self._store

    def active_bundle(self) -> ActiveBundle:
        """The bundle decisions are made under right now."""
        return self._bundle()

    # -- admission --------------------------------------------------------------------
    def admit(self, ctx: Context, req: LlmRequest, *, tool_uses: Mapping[str, int] | None = None,
              uncapped: Mapping[str, str] | None = None) -> Admission | Denial:
        """`tool_uses`: the most calls of each per-call unit the request can incur (the worst case counts
        them); `uncapped`: units the request enables with no cap, by the field enabling them — a priced
        one is refused (400), since its cost could not be bounded."""
        return self._admit(ctx, req, dict(tool_uses or {}), dict(uncapped or {}), direct=False)

    def admit_direct(self, ctx: Context, req: LlmRequest, *,
                     tool_uses: Mapping[str, int] | None = None) -> Admission | Denial:
        """A call the client makes itself (the SDK's direct mode), admitted like a gateway call: the same
        policies, budgets, `gateway.default_max_tokens` and pricing provider — that of the configured
        provider serving the model, else the protocol family's own prices. Settle or release it as usual."""
        return self._admit(ctx, req, dict(tool_uses or {}), {}, direct=True)

    def settle_admitted(self, reservation: Reservation, ctx: Context, req: LlmRequest, model: str,
                        usage: TokenUsage, *, status: str = "ok", latency_ms: int = 0) -> Settlement:
        """Settle a direct-mode call admitted earlier by `admit_direct` whose `Admission` is not at hand
        (admitted for a client over the API): priced here, with this core's catalog, as the model it was
        admitted to; UnknownPrice when that model has no price now."""
        served = self._serve(model, req.protocol, True)
        if served is None:  # a direct call is always served (by its protocol family's prices at least)
            raise UnknownPrice(model, req.protocol)
        price = self.catalog.resolve(served[1], served[0].pricing_provider, self._clock())
        admission = Admission(reservation.decision_id, "allow", ctx, req, served[0], served[1], 0, {}, price,
                              reservation, (), reservation.amount_nano)
        return self.settle(admission, usage, status=status, latency_ms=latency_ms)

    def redecide(self, ctx: Context, recorded: Mapping[str, Any]) -> Admission | Denial:
        """Decide again the request a logged `llm.request` decision's input describes (policy replay)."""
        req, uses, uncapped = admit_arguments(recorded)
        if recorded.get("direct") is True:
            return self.admit_direct(ctx, req, tool_uses=uses)
        return self.admit(ctx, req, tool_uses=uses, uncapped=uncapped)

    def _serve(self, model: str, protocol: str, direct: bool) -> tuple[ProviderConfig, str] | None:
        served = self.config.provider_for(model, protocol)
        if served is None and direct:  # the client calls its provider itself: priced under the protocol family
            return ProviderConfig(name=protocol, type=protocol, base_url="", pricing_provider=protocol), model
        return served

    def _target(self, model: str, req: LlmRequest, direct: bool) -> tuple[ProviderConfig, str] | None:
        """Where a request routed to `model` goes: a provider of its own protocol family, else — a chat
        request through the gateway being translatable — a provider of another vendor's family."""
        if direct or req.endpoint not in _CHAT_ENDPOINTS:
            return self._serve(model, req.protocol, direct)
        return self.config.route_target(model, req.protocol)

    def _admit(self, ctx: Context, req: LlmRequest, uses: dict[str, int], open_ended: dict[str, str], *,
               direct: bool) -> Admission | Denial:
        served = self._serve(req.model, req.protocol, direct)
        if served is None:
            return Denial("model_not_found",
                          f"model {req.model!r} is not served by any {req.protocol} provider of this gateway", None)
        adapter: dict[str, Any] = {**req.decision_input(), "tool_uses": uses, "uncapped": open_ended}
        if direct:
            adapter["direct"] = True

        def worst_case(evaluation: Evaluation) -> Hold | Denial:
            return self._worst_case(evaluation, req, uses, open_ended, direct)

        def fallback(evaluation: Evaluation, refused: Refused) -> Hold | None:
            return self._degrade(evaluation, req, refused, uses, open_ended, direct)

        got = self.decider.decide(HOOK, ctx, req.cel(served[0].pricing_provider), worst_case, adapter=adapter,
                                  fallback=fallback, slo_model=req.model)
        if not isinstance(got, Reserved):
            if isinstance(got, Denial):
                return got
            raise TypeError("an llm.request is never a dry run")
        hold = got.hold
        if not isinstance(hold, LlmHold) or hold.provider is None or hold.price is None:
            raise TypeError("an llm.request holds an LlmHold")
        return Admission(got.evaluation.decision_id, hold.effect, ctx, req, hold.provider, hold.model,
                         hold.max_tokens, hold.params, hold.price, got.reservation, got.states, hold.amount_nano,
                         hold.reason)

    def _worst_case(self, evaluation: Evaluation, req: LlmRequest, uses: Mapping[str, int],
                    uncapped: Mapping[str, str], direct: bool) -> Hold | Denial:
        policy, deny = evaluation.policy, self.decider.deny
        served = self._target(policy.model, req, direct)
        if served is None:
            return deny(evaluation, "route_unavailable",
                        f"policy {policy.route.name if policy.route else '?'!r} routes to {policy.model!r}, "
                        f"which no {req.protocol} provider serves"
                        + ("" if req.endpoint not in _CHAT_ENDPOINTS or direct else
                           ", nor a provider of another vendor a chat request can be translated to"))
        provider, upstream_model = served
        if req.loop_hash and evaluation.context.run:
            denial = self._loop_guard(evaluation, evaluation.context.run, req.loop_hash)
            if denial is not None:
                return denial
        try:
            price = self.catalog.resolve(upstream_model, provider.pricing_provider, evaluation.now)
        except UnknownPrice as exc:
            return deny(evaluation, "unknown_price", f"{exc}; unknown prices are denied by the pricing configuration")
        unpriced = [u for u in req.params.get("billed_units") or () if not price.priced(str(u))]
        if unpriced and self.catalog.config.unknown_price.action != "charge":
            return deny(evaluation, "unknown_price",
                        f"no known price for {', '.join(unpriced)} of model {upstream_model!r} (the request enables "
                        "a tool billed per call); unknown prices are denied by the pricing configuration",
                        extra={"units": unpriced})
        open_ended = {u: f for u, f in uncapped.items() if price.priced(u)}
        if open_ended:
            unit, where = next(iter(sorted(open_ended.items())))
            return deny(evaluation, "uncapped_billed_unit",
                        f"{where}: enables {unit}, billed per call for model {upstream_model!r}, with no parameter "
                        "capping how many calls it makes, so the gateway cannot bound its cost; use a tool the "
                        "protocol can cap (Anthropic web search `max_uses`, Chat Completions `web_search_options`)",
                        extra={"units": sorted(open_ended), "field": where})
        effect = policy.effect if policy.effect in ("route", "mutate") else "allow"
        return self._hold(evaluation.now, req, policy, provider, upstream_model, price, effect, evaluation.reason,
                          uses)

    def _degrade(self, evaluation: Evaluation, req: LlmRequest, refused: Refused, uses: Mapping[str, int],
                 uncapped: Mapping[str, str], direct: bool) -> Hold | None:
        """Route on exceed: a budget with no room for the model degrades to its `route_to` model."""
        spec, held = refused.spec, refused.hold
        if refused.limit != "amount" or spec is None or spec.on_exceed != "route" or not spec.route_to:
            return None
        degraded = self._target(spec.route_to, req, direct)
        if degraded is None or not isinstance(held, LlmHold) or degraded[1] == held.model:
            return None
        try:
            cheaper = self.catalog.resolve(degraded[1], degraded[0].pricing_provider, evaluation.now)
        except UnknownPrice:
            return None
        if any(cheaper.priced(u) for u in uncapped):
            return None
        why = f"budget {spec.name!r} has no room for {held.model}; degraded to {degraded[1]}"
        return self._hold(evaluation.now, req, evaluation.policy, degraded[0], degraded[1], cheaper, "route", why,
                          uses)

    def _hold(self, now: datetime, req: LlmRequest, policy: PolicyDecision, provider: ProviderConfig, model: str,
              price: PriceSheet, effect: str, reason: str, tool_uses: Mapping[str, int]) -> LlmHold:
        max_tokens = self._max_tokens(req, policy)
        tier = req.params.get("service_tier")
        asked = tuple((k, v) for k, v in req.params.items() if k in ("speed", "processing") and isinstance(v, str))
        worst = price.max_cost_nano(req.input_bound, max_tokens, service_tier=tier if isinstance(tier, str) else None,
                                    conditions=asked, units=tool_uses)
        params = {k: v for k, v in policy.mutations.items() if k != "max_tokens"}
        result: dict[str, Any] = {"model": model, "provider": provider.name, "max_tokens": max_tokens,
                                  "reserved_nano": worst, "params": dict(params)}
        if tool_uses:
            result["tool_uses"] = dict(tool_uses)  # the per-call units the bound counts
        return LlmHold(worst, now + timedelta(seconds=self.config.gateway.reservation_ttl), effect, reason, result,
                       claim_model=model, what="up to this request", provider=provider, price=price,
                       max_tokens=max_tokens, params=params, model=model)

    def _loop_guard(self, evaluation: Evaluation, run: str, loop_hash: str) -> Denial | None:
        settings = self.config.gateway
        since = evaluation.now - timedelta(seconds=settings.loop_window)
        seen = self.ledger.count_recent_requests(run, loop_hash, since)
        if seen + 1 < settings.loop_threshold:
            return None
        return self.decider.deny(
            evaluation, "loop_detected",
            f"loop detected in run {run!r}: the same request was already sent {seen} times within "
            f"{settings.loop_window}s (limit {settings.loop_threshold - 1} repeats)",
            extra={"repeats": seen, "request_hash": loop_hash})

    def _max_tokens(self, req: LlmRequest, policy: PolicyDecision) -> int:
        if req.endpoint == "embeddings":
            return 0
        cap = policy.mutations.get("max_tokens")
        candidates = [v for v in (req.max_tokens, cap) if isinstance(v, int) and v > 0]
        return min(candidates) if candidates else self.config.gateway.default_max_tokens

    # -- settlement ---------------------------------------------------------------------------
    def settle(self, admission: Admission, usage: TokenUsage, *, status: str = "ok",
               latency_ms: int = 0, saved_nano: int = 0, ids: CallIds | None = None) -> Settlement:
        """`ids`: the upstream response id and the client's trace/parent span ids, stored on the event
        (a span or SDK record of the same call later links to it: counted once)."""
        # the requested tier prices the call only where the response does not report the tier it served
        # (OpenAI always does, and may serve a lower tier than asked)
        skip = ("service_tier",) if admission.request.protocol == "openai" else ()
        usage = with_conditions(usage, {k: str(v) for k, v in admission.request.params.items()
                                        if k in _CONDITION_PARAMS and k not in skip and isinstance(v, str)
                                        and v != "auto"})
        cost = admission.price.cost_nano(usage)
        unpriced = admission.price.unpriced(usage)
        if unpriced:  # a billed unit with no price: flagged and said, never a silent $0
            status = "unpriced" if status == "ok" else status
            self.notifier.notify(Notification(
                "unknown_price", admission.model,
                f"{admission.model}: no known price for {', '.join(unpriced)}; the call was charged without them "
                "and its cost event is flagged", admission.decision_id, {"units": list(unpriced)}))
        if cost > admission.worst_nano:
            status = self._over_bound(admission, usage, cost, status)
        if admission.effect == "route" and not saved_nano:
            saved_nano = self._route_saving(admission, usage, cost)
        event = self._event(admission, usage, cost, status=status, latency_ms=latency_ms, saved_nano=saved_nano)
        if ids:
            event = replace(event, response_id=ids.response_id, trace_id=ids.trace_id, span_id=ids.span_id)
        if admission.reservation is None:
            self.decider.record_event(event)
            return Settlement(event.id, cost, None)
        states = self.decider.settle(admission.reservation.id, event)  # alerts the thresholds crossed
        return Settlement(event.id, cost, tightest_remaining(states))

    def _over_bound(self, admission: Admission, usage: TokenUsage, cost: int, status: str) -> str:
        """A reported usage costing more than the call's proven bound: the money is spent, so the call is
        settled at it, but its event says `over_bound` and an alert names the call (an upstream reporting
        more than it could have served can push spend past a hard budget)."""
        self.notifier.notify(Notification(
            "usage_over_bound", admission.model,
            f"{admission.model} via {admission.provider.name}: the upstream reported usage costing "
            f"{cost} nano-USD ({usage.input_tokens} input, {usage.output_tokens} output tokens), above the "
            f"call's bound of {admission.worst_nano} nano-USD (input bound {admission.request.input_bound}, "
            f"max_tokens {admission.max_tokens}); it was charged as reported and its cost event is flagged "
            "over_bound", admission.decision_id,
            {"reason": "over_bound", "cost_nano": cost, "bound_nano": admission.worst_nano,
             "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
             "provider": admission.provider.name}))
        return "over_bound" if status == "ok" else status

    def record_spend(self, events: Sequence[CostEvent], source: str, *,
                     facts: Callable[[CostEvent], Mapping[str, Any]] | None = None) -> SpendRecord:
        """Hook spend.record: money already spent (SDK, ingest, OTLP, GPU jobs, resources), recorded
        against every matching budget even past its limit, with `observed` decisions (one per call and
        context, naming its events) and alerts (core/spend.py)."""
        return record_spend(self.decider, events, source, facts=facts)

    def _route_saving(self, admission: Admission, usage: TokenUsage, cost: int) -> int:
        """What the same usage would have cost on the model the client asked for."""
        asked = self.config.provider_for(admission.request.model, admission.request.protocol)
        if asked is None:
            return 0
        try:
            original = self.catalog.resolve(asked[1], asked[0].pricing_provider, self._clock())
        except UnknownPrice:
            return 0
        return max(0, original.cost_nano(usage) - cost)

    def release(self, admission: Admission, status: str = "released") -> None:
        if admission.reservation is not None:
            self.decider.release(admission.reservation.id, status)

    def serve_cached(self, admission: Admission, latency_ms: int = 0) -> tuple[CachedResponse, Settlement] | None:
        """A response-cache hit: give the reservation back and record a $0 event with the saving."""
        hash_ = admission.request.cache_hash
        if hash_ is None or self._store is None:
            return None
        entry = self._store.cache_get(hash_, self._clock())
        if entry is None:
            return None
        self.release(admission, "released")
        usage = TokenUsage()
        event = self._event(admission, usage, 0, status="cached", latency_ms=latency_ms,
                            saved_nano=entry.cost_nano, kind="cache_hit")
        self.decider.record_event(event)
        return entry, Settlement(event.id, 0, admission.remaining_nano)

    def cache_response(self, admission: Admission, body: bytes, content_type: str, usage: TokenUsage,
                       cost_nano: int) -> None:
        if admission.request.cache_hash is None or self._store is None:
            return
        now = self._clock()
        self._store.cache_put(CachedResponse(
            request_hash=admission.request.cache_hash, body=body, content_type=content_type,
            model=admission.model, provider=admission.provider.name, cost_nano=cost_nano,
            usage_json=orjson.dumps({"input_tokens": usage.input_tokens,
                                     "output_tokens": usage.output_tokens}).decode(),
            created_at=now, expires_at=now + timedelta(seconds=self.config.gateway.cache_ttl),
        ))

    def expire_reservations(self) -> int:
        return self.ledger.expire_reservations(self._clock())

    # -- records ------------------------------------------------------------------------------
    def _event(self, admission: Admission, usage: TokenUsage, cost: int, *, status: str, latency_ms: int,
               saved_nano: int, kind: str = "llm") -> CostEvent:
        rates = admission.price.for_conditions(usage.conditions).rates(usage.input_tokens)
        return CostEvent(
            id=new_id("evt"), ts=self._clock(), context=admission.context,
            provider=admission.provider.name, model=admission.model, cost_nano=cost, kind=kind,
            endpoint=admission.request.endpoint, usage=usage,
            unit_prices={name: str(rate) for name, rate in rates.items()},
            saved_nano=saved_nano, decision_id=admission.decision_id,
            reservation_id=admission.reservation.id if admission.reservation else None,
            latency_ms=latency_ms, status=status,
            price_flagged=admission.price.flagged_default or status == "unpriced",
            request_hash=admission.request.loop_hash, requested_model=admission.request.model,
        )
