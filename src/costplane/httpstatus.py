"""The HTTP status of each refusal the decision core can give: chosen here, by the HTTP layers.

The core refuses with a `code` (and whether retrying later can succeed); the gateway, the
environment APIs and the machine API answer with `denial_status(denial)`. A code missing from the
table is a 403 (refused by the rules) unless the refusal is retryable (429).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

__all__ = ["ACCEPTED", "CREATED", "DENIAL_STATUS", "OK", "denial_status", "status_of"]

OK, CREATED, ACCEPTED = 200, 201, 202

#: refusal code -> HTTP status
DENIAL_STATUS: Mapping[str, int] = MappingProxyType({
    # the request itself cannot be decided (a 4xx naming the field)
    "model_not_found": 400, "uncapped_billed_unit": 400, "invalid_input": 400, "missing_tags": 400,
    "invalid_extension": 400,
    # money: no room in a budget
    "budget_exceeded": 402,
    # refused by the rules
    "policy_denied": 403, "route_unavailable": 403, "unknown_price": 403, "ttl_exceeds_max": 403,
    "max_ttl_exceeded": 403, "max_extensions": 403, "approval_required": 403,
    # the thing asked about does not exist / is not in the state asked for
    "unknown_blueprint": 404, "unknown_environment": 404, "not_pending": 409, "not_running": 409,
    # rate-like limits: later may succeed
    "call_limit_exceeded": 429, "concurrency_limit": 429, "loop_detected": 429, "slo_throttled": 429,
    # a dependency failed
    "driver_failed": 502, "spend_unverifiable": 503,
})


class _Refusal(Protocol):
    @property
    def code(self) -> str: ...

    @property
    def retryable(self) -> bool: ...


def status_of(code: str, retryable: bool = False) -> int:
    """The status of a refusal code."""
    found = DENIAL_STATUS.get(code)
    if found is not None:
        return found
    return 429 if retryable else 403


def denial_status(denial: _Refusal) -> int:
    """The HTTP status to answer a `costplane.core.requests.Denial` with."""
    return status_of(denial.code, denial.retryable)
