"""How a run ended: its status and, for a stopped run, the decision that stopped it.

A run seen only through the gateway has no node saying how it ended; the ledger still knows,
from the decisions that carried its id (`ctx.run`) and its cost events. With D the run's
latest decision (its own and its nested runs', by time then id; effect `observed` — spend
recorded after the fact — is not an admission and is left out):

1. **stopped** — D is a denial (effect `deny`) and no cost event recorded without a reservation
   (spend no admission reserved for: SDK direct mode, `/v1/runs/ingest`, OTLP spans) came
   after it. Nothing was admitted after the denial, so the run did not go on; calls admitted
   before it may still settle afterwards and do not change that. `stopped_by` names the
   decision (see `stopped_by`).
2. **running** — D admitted a call that has not ended: its reservation is still open and no
   cost event came after D.
3. **error** — D admitted a call whose reservation was released or expired with no cost event
   after D (the upstream failed or answered an error), or the run's latest cost event has
   status `error` (a failed tool call or span).
4. **ok** otherwise — including a run refused once that went on and was admitted again.

A run with a root node (SDK, OTLP) keeps the status its program wrote: `running` and `ok` stand
(the program may have handled a refusal). An `error` or `stopped` run whose latest decision is a
denial as in 1 is `stopped` by that decision (a gateway refusal raises in the program, which
ends the run with an error); a `stopped` run without one was stopped by the SDK's own run guard,
named from the error it recorded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from costplane.ledger.runtypes import RunActivity
from costplane.ledger.types import DecisionRecord

__all__ = ["STOP_KINDS", "Ending", "guard_stop", "pending_reservation", "run_ending", "stopped_by"]

#: denial code -> what stopped the run (`stopped_by.kind`); any other code is kind "denied"
STOP_KINDS: Mapping[str, str] = {
    "budget_exceeded": "budget", "call_limit_exceeded": "call_limit", "concurrency_limit": "concurrency",
    "loop_detected": "loop_guard", "policy_denied": "policy", "route_unavailable": "policy",
    "slo_throttled": "slo", "unknown_price": "pricing", "spend_unverifiable": "store",
}
_POLICY = re.compile(r"policy '([^']+)'")  # the core's message for a policy denial names the policy
_GUARD_KINDS = {"BudgetExceeded": "budget", "StepLimitExceeded": "call_limit", "ToolLimitExceeded": "call_limit"}


@dataclass(frozen=True, slots=True)
class Ending:
    status: str  # ok | running | stopped | error (or what an SDK wrote)
    stopped_by: Mapping[str, Any] | None = None


def stopped_by(decision: DecisionRecord) -> dict[str, Any]:
    """{kind, name, decision_id, code, at, reason} of a denial: `name` is the budget (budget,
    call_limit, concurrency) or the policy (policy) it names, None for the loop guard."""
    code = str(decision.result.get("code") or "denied")
    kind = STOP_KINDS.get(code, "denied")
    name = decision.result.get("budget") or decision.result.get("policy")
    if not name and kind == "policy":
        found = _POLICY.search(decision.reason)
        name = found.group(1) if found else (decision.policies[0] if decision.policies else None)
    return {"kind": kind, "name": None if name is None else str(name), "decision_id": decision.id, "code": code,
            "at": decision.ts.isoformat(), "reason": decision.reason}


def guard_stop(attributes: Mapping[str, Any], at: datetime | None) -> dict[str, Any]:
    """`stopped_by` of a run the SDK's run guard stopped, from the error it recorded
    ("BudgetExceeded: …")."""
    error = str(attributes.get("error") or "")
    code = error.split(":", 1)[0] if ":" in error else "run_guard"
    return {"kind": _GUARD_KINDS.get(code, "run_guard"), "name": None, "decision_id": None, "code": code,
            "at": at.isoformat() if at else None, "reason": error}


def _denied_last(activity: RunActivity | None, decision: DecisionRecord | None) -> bool:
    if decision is None or decision.effect != "deny":
        return False
    later = activity.last_unadmitted_at if activity is not None else None
    return later is None or later <= decision.ts


def pending_reservation(activity: RunActivity | None, decision: DecisionRecord | None) -> str | None:
    """The reservation of the latest decision when it admitted a call no cost event followed."""
    if decision is None or decision.effect == "deny":
        return None
    last = activity.last_event_at if activity is not None else None
    if last is not None and last >= decision.ts:
        return None
    found = decision.result.get("reservation_id")
    return found if isinstance(found, str) else None


def run_ending(activity: RunActivity | None, decision: DecisionRecord | None, reservation: str | None,
               node_status: str | None = None, node_attributes: Mapping[str, Any] | None = None,
               ended_at: datetime | None = None) -> Ending:
    """The rule of the module. `reservation` is the status of `pending_reservation`'s reservation;
    `node_status` the status a root node carries (None for a run without one)."""
    denied = _denied_last(activity, decision)
    if node_status is not None:
        if node_status in ("error", "stopped") and denied and decision is not None:
            return Ending("stopped", stopped_by(decision))
        if node_status == "stopped":
            return Ending("stopped", guard_stop(node_attributes or {}, ended_at))
        return Ending(node_status)
    if denied and decision is not None:
        return Ending("stopped", stopped_by(decision))
    if reservation == "open":
        return Ending("running")
    if reservation in ("released", "expired"):
        return Ending("error")
    if activity is not None and activity.last_error_at is not None and activity.last_error_at == activity.last_event_at:
        return Ending("error")
    return Ending("ok")
