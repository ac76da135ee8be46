"""DecisionCore: context + request -> policy -> price -> budget claims -> one atomic reservation.

It knows no HTTP. The gateway (and later the environment lifecycle, SDK and
OTLP ingest) call admit() before money is spent and settle()/release() after.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from costplane.attribution.context import Context
from costplane.config import Config, ProviderConfig
from costplane.core.bundle_state import ActiveBundle
from costplane.core.claims import budget_claims
from costplane.core.notify import LoggingNotifier, Notification, Notifier, crossed_alerts
from costplane.core.requests import Admission, Denial, LlmRequest, Settlement, tightest_remaining
from costplane.core.spend import SpendRecord, record_spend
from costplane.ledger.store import CachedResponse, Store, StoreUnavailable
from costplane.ledger.types import CallIds, ClaimState, CostEvent, DecisionRecord, Reservation
from costplane.money import format_usd
from costplane.policy.types import BudgetSpec, PolicyDecision
from costplane.pricing.catalog import Catalog
from costplane.pricing.readers import with_conditions
from costplane.pricing.types import PriceSheet, TokenUsage, UnknownPrice

if TYPE_CHECKING:  # core.slo imports the policy engine; only its type is needed here
    from costplane.core.slo import SloGate

__all__ = ["DecisionCore", "new_id"]

log = logging.getLogger("costplane.core")

HOOK = "llm.request"
_CONDITION_PARAMS = ("service_tier", "processing", "speed")  # request facts that select a price variant
_LIMIT_STATUS = {"amount": (402, "budget_exceeded"), "calls": (429, "call_limit_exceeded"),
                 "concurrent": (429, "concurrency_limit")}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class DecisionCore:
    def __init__(
        self,
        config: Config,
        store: Store,
        catalog: Catalog,
        bundle: Callable[[], ActiveBundle],
        clock: Callable[[], datetime] = _utcnow,
        notifier: Notifier | None = None,
        slo_gate: SloGate | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.catalog = catalog
        self._bundle = bundle
        self._clock = clock
        self.notifier: Notifier = notifier or LoggingNotifier()
        self.slo_gate = slo_gate  # breached economic SLOs (core/slo.py); None: no SLO effects

    def active_bundle(self) -> ActiveBundle:
        """The bundle decisions are made under right now."""
        return self._bundle()

    # -- admission --------------------------------------------------------------------
    def admit(self, ctx: Context, req: LlmRequest, *, tool_uses: Mapping[str, int] | None = None,
              uncapped: Mapping[str, str] | None = None) -> Admission | Denial:
        """`tool_uses`: the most calls of each per-call unit the request can incur (the worst case counts
        them); `uncapped`: units the request enables with no cap, by the field enabling them — a priced
        one is refused (400), since its cost could not be bounded."""
        now = self._clock()
        bundle = self._bundle()
        served = self.config.provider_for(req.model, req.protocol)
        if served is None:
            return Denial(400, "model_not_found",
                          f"model {req.model!r} is not served by any {req.protocol} provider of this gateway", None)
        provider, _ = served
        decision_id = new_id("dec")
        policy, budgets = bundle.engine.decide(HOOK, ctx, req.cel(provider.pricing_provider))

        def deny(status: int, code: str, message: str, *, budgets_used: tuple[str, ...] = (),
                 retryable: bool = False, extra: Mapping[str, Any] | None = None) -> Denial:
            text = f"{message} (decision {decision_id}, bundle {bundle.revision})"
            self._log(decision_id, now, bundle, ctx, req, "deny", text, status, policy, budgets_used,
                      {"code": code, **(extra or {})})
            return Denial(status, code, text, decision_id, retryable)

        # Economic SLOs (core/slo.py): while an SLO is breached, its slo.breach policies route or throttle.
        if self.slo_gate is not None:
            policy, throttled = self.slo_gate.apply(ctx, req.model, policy, now)
            if throttled is not None:
                return deny(429, "slo_throttled", throttled, retryable=True)
        if policy.effect == "deny" and policy.deny is not None:
            return deny(403, "policy_denied", f"denied by policy {policy.deny.name!r}: {policy.deny.reason}")

        model = policy.model
        served = self.config.provider_for(model, req.protocol)
        if served is None:
            return deny(403, "route_unavailable",
                        f"policy {policy.route.name if policy.route else '?'!r} routes to {model!r}, "
                        f"which no {req.protocol} provider serves")
        provider, upstream_model = served

        if req.loop_hash and ctx.run:
            denial = self._loop_guard(ctx.run, req.loop_hash, now, deny)
            if denial is not None:
                return denial

        try:
            price = self.catalog.resolve(upstream_model, provider.pricing_provider, now)
        except UnknownPrice as exc:
            return deny(403, "unknown_price", f"{exc}; unknown prices are denied by the pricing configuration")
        unpriced = [u for u in req.params.get("billed_units") or () if not price.priced(str(u))]
        if unpriced and self.catalog.config.unknown_price.action != "charge":
            return deny(403, "unknown_price",
                        f"no known price for {', '.join(unpriced)} of model {upstream_model!r} (the request enables "
                        "a tool billed per call); unknown prices are denied by the pricing configuration",
                        extra={"units": unpriced})

        open_ended = {u: f for u, f in (uncapped or {}).items() if price.priced(u)}
        if open_ended:
            unit, where = next(iter(sorted(open_ended.items())))
            return deny(400, "uncapped_billed_unit",
                        f"{where}: enables {unit}, billed per call for model {upstream_model!r}, with no parameter "
                        "capping how many calls it makes, so the gateway cannot bound its cost; use a tool the "
                        "protocol can cap (Anthropic web search `max_uses`, Chat Completions `web_search_options`)",
                        extra={"units": sorted(open_ended), "field": where})
        uses = dict(tool_uses or {})
        max_tokens = self._max_tokens(req, policy)
        reason = "; ".join(m.reason for m in policy.matched if m.reason)
        effect = policy.effect if policy.effect in ("route", "mutate") else "allow"
        attempt = self._reserve(decision_id, now, bundle, ctx, req, policy, budgets, provider,
                                upstream_model, price, max_tokens, effect, reason, uses)
        if isinstance(attempt, Admission):
            return attempt
        state, limit, spec = attempt
        if limit == "amount" and spec is not None and spec.on_exceed == "route" and spec.route_to:
            degraded = self.config.provider_for(spec.route_to, req.protocol)
            if degraded is not None and degraded[1] != upstream_model:
                try:
                    cheaper = self.catalog.resolve(degraded[1], degraded[0].pricing_provider, now)
                except UnknownPrice:
                    cheaper = None
                if cheaper is not None and not any(cheaper.priced(u) for u in uncapped or {}):
                    why = f"budget {spec.name!r} has no room for {upstream_model}; degraded to {degraded[1]}"
                    retry = self._reserve(decision_id, now, bundle, ctx, req, policy, budgets, degraded[0],
                                          degraded[1], cheaper, max_tokens, "route", why, uses)
                    if isinstance(retry, Admission):
                        return retry
                    state, limit, spec = retry
        if state is None:  # the store could not be reached and a budget fails closed
            return deny(503, "spend_unverifiable",
                        "spend cannot be verified right now (store unavailable); failing closed", retryable=True)
        return self._budget_denial(deny, state, limit or "amount", spec)

    def _reserve(
        self, decision_id: str, now: datetime, bundle: ActiveBundle, ctx: Context, req: LlmRequest,
        policy: PolicyDecision, budgets: list[BudgetSpec], provider: ProviderConfig, model: str,
        price: PriceSheet, max_tokens: int, effect: str, reason: str, tool_uses: Mapping[str, int],
    ) -> Admission | tuple[ClaimState | None, str | None, BudgetSpec | None]:
        tier = req.params.get("service_tier")
        asked = tuple((k, v) for k, v in req.params.items() if k in ("speed", "processing") and isinstance(v, str))
        worst = price.max_cost_nano(req.input_bound, max_tokens, service_tier=tier if isinstance(tier, str) else None,
                                    conditions=asked, units=tool_uses)
        claims = budget_claims(budgets, ctx, model, worst, now)
        reservation = Reservation(
            id=new_id("res"), claims=claims, created_at=now,
            expires_at=now + timedelta(seconds=self.config.gateway.reservation_ttl),
            decision_id=decision_id, key_id=ctx.key_id,
        )
        params = {k: v for k, v in policy.mutations.items() if k != "max_tokens"}
        result = {"model": model, "provider": provider.name, "max_tokens": max_tokens,
                  "reserved_nano": worst, "reservation_id": reservation.id, "params": dict(params)}
        if tool_uses:
            result["tool_uses"] = dict(tool_uses)  # the per-call units the bound counts
        record = self._record(decision_id, now, bundle, ctx, req, effect, reason, 200, policy,
                              tuple(c.budget for c in claims), result)
        try:
            outcome = self.store.reserve(reservation, record)
        except StoreUnavailable:
            if budgets and all(b.fail_open for b in budgets):
                return Admission(decision_id, effect, ctx, req, provider, model, max_tokens, params, price,
                                 None, (), worst, reason + "; store unavailable, budgets fail open")
            return None, None, None
        if outcome.ok:
            self._notify_admission(decision_id, policy, outcome.states)
            return Admission(decision_id, effect, ctx, req, provider, model, max_tokens, params, price,
                             reservation, outcome.states, worst, reason)
        refused = outcome.refused
        spec = bundle.budgets.get(refused.budget) if refused is not None else None
        return refused, outcome.refused_limit, spec

    def _notify_admission(self, decision_id: str, policy: PolicyDecision, states: tuple[ClaimState, ...]) -> None:
        for match in policy.notify:
            self.notifier.notify(Notification("policy", match.name, match.reason, decision_id))
        for state in states:
            broken = state.exceeded
            if broken is not None and not state.hard:
                self.notifier.notify(Notification(
                    "soft_budget_exceeded", state.budget,
                    f"soft budget {state.budget!r} is over its {broken} limit (spent {format_usd(state.spent_nano)}"
                    f" + reserved {format_usd(state.reserved_nano)} USD); the request was allowed", decision_id,
                    {"partition": state.partition, "limit": broken}))

    def _budget_denial(self, deny: Callable[..., Denial], state: ClaimState, limit: str,
                       spec: BudgetSpec | None) -> Denial:
        status, code = _LIMIT_STATUS.get(limit, (402, "budget_exceeded"))
        window = spec.window.describe() if spec else "?"
        scope = f" [{state.partition}]" if state.partition else ""
        if limit == "amount":
            message = (
                f"budget {state.budget!r}{scope} exceeded: spent {format_usd(state.spent_nano)} USD + reserved "
                f"{format_usd(state.reserved_nano)} USD (including up to this request) > limit "
                f"{format_usd(state.limit_nano or 0)} USD, window {window}"
            )
        elif limit == "calls":
            message = (f"budget {state.budget!r}{scope}: {state.calls} calls > limit {state.limit_calls}, "
                       f"window {window}")
        else:
            message = (f"budget {state.budget!r}{scope}: {state.concurrent} concurrent requests > limit "
                       f"{state.limit_concurrent}")
        return deny(status, code, message, budgets_used=(state.budget,), retryable=(limit == "concurrent"),
                    extra={"budget": state.budget, "partition": state.partition, "limit": limit,
                           "spent_nano": state.spent_nano, "reserved_nano": state.reserved_nano})

    def _loop_guard(self, run: str, loop_hash: str, now: datetime,
                    deny: Callable[..., Denial]) -> Denial | None:
        settings = self.config.gateway
        since = now - timedelta(seconds=settings.loop_window)
        seen = self.store.count_recent_requests(run, loop_hash, since)
        if seen + 1 < settings.loop_threshold:
            return None
        return deny(429, "loop_detected",
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
        if admission.effect == "route" and not saved_nano:
            saved_nano = self._route_saving(admission, usage, cost)
        event = self._event(admission, usage, cost, status=status, latency_ms=latency_ms, saved_nano=saved_nano)
        if ids:
            event = replace(event, response_id=ids.response_id, trace_id=ids.trace_id, span_id=ids.span_id)
        if admission.reservation is None:
            self.store.record_event(event, ())
            return Settlement(event.id, cost, None)
        states = self.store.settle(admission.reservation.id, event)
        for alert in crossed_alerts(states, self._bundle().budgets, cost, admission.decision_id):
            self.notifier.notify(alert)
        return Settlement(event.id, cost, tightest_remaining(states))

    def record_spend(self, events: Sequence[CostEvent], source: str, *,
                     facts: Callable[[CostEvent], Mapping[str, Any]] | None = None) -> SpendRecord:
        """Hook spend.record: money already spent (SDK, ingest, OTLP, GPU jobs, resources), recorded
        against every matching budget even past its limit, with an `observed` decision and alerts
        (core/spend.py)."""
        return record_spend(self.store, self._bundle(), self.notifier, events, source, new_id=new_id,
                            now=self._clock(), facts=facts)

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
            self.store.release(admission.reservation.id, status)

    def serve_cached(self, admission: Admission, latency_ms: int = 0) -> tuple[CachedResponse, Settlement] | None:
        """A response-cache hit: give the reservation back and record a $0 event with the saving."""
        hash_ = admission.request.cache_hash
        if hash_ is None:
            return None
        entry = self.store.cache_get(hash_, self._clock())
        if entry is None:
            return None
        self.release(admission, "released")
        usage = TokenUsage()
        event = self._event(admission, usage, 0, status="cached", latency_ms=latency_ms,
                            saved_nano=entry.cost_nano, kind="cache_hit")
        self.store.record_event(event, ())
        return entry, Settlement(event.id, 0, admission.remaining_nano)

    def cache_response(self, admission: Admission, body: bytes, content_type: str, usage: TokenUsage,
                       cost_nano: int) -> None:
        if admission.request.cache_hash is None:
            return
        now = self._clock()
        self.store.cache_put(CachedResponse(
            request_hash=admission.request.cache_hash, body=body, content_type=content_type,
            model=admission.model, provider=admission.provider.name, cost_nano=cost_nano,
            usage_json=orjson.dumps({"input_tokens": usage.input_tokens,
                                     "output_tokens": usage.output_tokens}).decode(),
            created_at=now, expires_at=now + timedelta(seconds=self.config.gateway.cache_ttl),
        ))

    def expire_reservations(self) -> int:
        return self.store.expire_reservations(self._clock())

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

    def _record(self, decision_id: str, now: datetime, bundle: ActiveBundle, ctx: Context, req: LlmRequest,
                effect: str, reason: str, status: int, policy: PolicyDecision, budgets: tuple[str, ...],
                result: Mapping[str, Any]) -> DecisionRecord:
        return DecisionRecord(
            id=decision_id, ts=now, hook=HOOK, effect=effect, bundle_revision=bundle.revision, context=ctx,
            input={"endpoint": req.endpoint, "model": req.model, "input_tokens_bound": req.input_bound,
                   "input_tokens_estimate": req.input_estimate, "max_tokens": req.max_tokens,
                   "stream": req.stream, "request_hash": req.loop_hash,
                   # for policy replay and the optimizer (costplane.optimize)
                   "protocol": req.protocol, "params": dict(req.params), "cache_hash": req.cache_hash},
            result=dict(result), policies=policy.policy_names, budgets=budgets, reason=reason,
            key_id=ctx.key_id, status_code=status,
        )

    def _log(self, decision_id: str, now: datetime, bundle: ActiveBundle, ctx: Context, req: LlmRequest,
             effect: str, reason: str, status: int, policy: PolicyDecision, budgets: tuple[str, ...],
             result: Mapping[str, Any]) -> None:
        try:
            self.store.record_decision(self._record(decision_id, now, bundle, ctx, req, effect, reason, status,
                                                    policy, budgets, result))
        except StoreUnavailable as exc:  # the denial stands; the client still gets its explanation
            log.error("decision %s could not be logged: %s", decision_id, exc)
