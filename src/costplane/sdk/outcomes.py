"""Business outcomes: `costplane.outcome("ticket_resolved", value=1)`.

An outcome carries the attribution context of where it is recorded (run, agent, tier, …),
or of `run=` / explicit dimensions. Cost per outcome divides the cost of every run in a
group — including runs that produced nothing (the waste) — by the outcomes' values.
"""

from __future__ import annotations

from decimal import Decimal

from costplane.attribution.context import Context
from costplane.ledger.runtypes import OutcomeRecord
from costplane.sdk.context import current_frame
from costplane.sdk.runs import new_node_id, require_session
from costplane.sdk.session import Session

__all__ = ["outcome"]


def outcome(name: str, value: int | str | Decimal = 1, *, run: str | None = None, session: Session | None = None,
            **dims: str | None) -> OutcomeRecord:
    """Record an outcome of `name` (e.g. ticket_resolved) worth `value` (default 1)."""
    target = require_session(session, f"outcome {name!r}")
    frame = current_frame()
    values = {**frame.values, **{k: v for k, v in dims.items() if v is not None}}
    if run is not None:
        values["run"] = run
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise ValueError(f"outcome {name!r}: value must be a number, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"outcome {name!r}: value must be a finite number >= 0, got {value!r}")
    record = OutcomeRecord(new_node_id("out"), target.clock(), name, amount,
                           Context.from_mapping(values, source=f"outcome {name!r}").with_values(outcome=name))
    target.record(outcomes=[record])
    return record
