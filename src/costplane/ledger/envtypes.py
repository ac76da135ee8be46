"""Records of governed environments, as the store keeps them (schema version 4).

Times are aware UTC datetimes; money is integer nano-USD. The JSON-shaped fields
(inputs, resources, driver, handle, lifecycle, metrics) are plain mappings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from costplane.attribution.context import Context

__all__ = ["OPEN_STATES", "EnvState", "EnvTransition", "EnvironmentRecord"]


class EnvState:
    PENDING = "pending_approval"  # waiting for approve / reject
    ACTIVE = "active"  # running, before the expiry notice
    EXPIRING = "expiring"  # running, the notice before expiry was sent
    SUSPENDED = "suspended"  # stopped by a runtime policy; its reservation is kept
    TORN_DOWN = "torn_down"  # ended: TTL, idle, budget, by hand
    REJECTED = "rejected"  # a pending launch refused by an approver (or its budget)
    FAILED = "failed"  # the driver could not start it


#: states the scheduler watches (next_action_at matters)
OPEN_STATES: tuple[str, ...] = (EnvState.PENDING, EnvState.ACTIVE, EnvState.EXPIRING, EnvState.SUSPENDED)


@dataclass(frozen=True, slots=True)
class EnvironmentRecord:
    id: str
    blueprint: str
    state: str
    context: Context
    inputs: Mapping[str, Any]
    resources: tuple[Mapping[str, Any], ...]  # priced resources: sku, count, hourly_nano, source
    driver: Mapping[str, Any]  # the blueprint's driver spec, rendered with the inputs
    handle: Mapping[str, Any]  # what the driver needs to find it again (pid, workspace, names)
    lifecycle: Mapping[str, Any]  # ttl, max_ttl, extend_by, max_extensions, notice, idle rule (seconds)
    hourly_nano: int
    projected_nano: int  # hourly × TTL (grows on extend): what the reservation holds
    decision_id: str
    bundle_revision: str
    created_at: datetime
    expires_at: datetime
    max_expires_at: datetime
    next_action_at: datetime
    accrued_nano: int = 0
    accrued_until: datetime | None = None
    reservation_id: str | None = None
    started_at: datetime | None = None
    notice_sent: bool = False
    extensions: int = 0
    metrics: Mapping[str, Any] = field(default_factory=dict)  # latest value and time of each metric
    idle_since: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None

    @property
    def owner(self) -> str | None:
        return self.context.owner

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def running(self) -> bool:
        return self.state in (EnvState.ACTIVE, EnvState.EXPIRING)


@dataclass(frozen=True, slots=True)
class EnvTransition:
    environment_id: str
    seq: int
    ts: datetime
    from_state: str
    to_state: str
    decision_id: str | None
    reason: str
