"""The machine API of governed environments under /v1/environments, declared in the one route
table (`api.table`): same parameter typing, error format and OpenAPI document as /api/v1.

Called with a costplane key (`Authorization: Bearer cpk_…` or `x-api-key`). The key's bound
attributes are the context (a request can add dimensions and tags the key does not bind, never
override them) AND its scope: a key bound to team alpha lists, reads, extends, tears down,
reports metrics for and approves alpha's environments only — another team's environment is 404,
exactly like an unknown one. Approving or rejecting needs a key with the tag role=approver (or
role=admin) and scope over the environment. Errors: {"error": {"code", "message", "field"}}.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from costplane.core.envpricing import cost_for
from costplane.ledger import codec
from costplane.ledger.envtypes import EnvironmentRecord, EnvState
from costplane.money import format_usd

__all__ = ["environment_view"]


def environment_view(env: EnvironmentRecord, now: datetime) -> dict[str, Any]:
    """The JSON shape of one environment (API and CLI)."""
    running = env.state in (EnvState.ACTIVE, EnvState.EXPIRING) and env.started_at is not None
    so_far = env.accrued_nano
    if running and env.started_at is not None:
        so_far = max(so_far, cost_for(env.hourly_nano, codec.to_us(now) - codec.to_us(env.started_at)))
    left = max(0, int((env.expires_at - now).total_seconds())) if env.is_open else 0
    return {
        "id": env.id, "blueprint": env.blueprint, "state": env.state, "owner": env.owner,
        "context": {**env.context.dimensions(), **dict(env.context.tags)}, "inputs": dict(env.inputs),
        "resources": [dict(r) for r in env.resources], "driver": env.driver.get("type"),
        "hourly_usd": format_usd(env.hourly_nano), "cost_so_far_usd": format_usd(so_far),
        "accrued_usd": format_usd(env.accrued_nano), "projected_usd": format_usd(env.projected_nano),
        "created_at": env.created_at.isoformat(),
        "started_at": env.started_at.isoformat() if env.started_at else None,
        "expires_at": env.expires_at.isoformat(), "time_left_seconds": left, "extensions": env.extensions,
        "metrics": dict(env.metrics), "ended_at": env.ended_at.isoformat() if env.ended_at else None,
        "end_reason": env.end_reason, "decision_id": env.decision_id, "bundle_revision": env.bundle_revision,
    }


