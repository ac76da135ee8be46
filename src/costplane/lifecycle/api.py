"""The JSON shape of a governed environment, shared by both APIs and the CLI.

The machine API of environments (/v1/environments, costplane keys) is declared in the one route
table by `lifecycle/machine.py`; the users' API (/api/v1/environments) by `api/environments.py`.
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


