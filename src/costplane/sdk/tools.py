"""Tool calls as steps of a run: `costplane.tool("search")` (context manager or decorator).

A tool call counts against the run's `max_steps` and `max_tool_calls` before it starts
(`ToolLimitExceeded`), is a node of the run tree, and sets ctx.tool. A tool with a
price (`cost_usd="0.005"` per call: a search API, a paid lookup) records a cost event
of kind "tool" charged to the run.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from costplane.attribution.context import Context
from costplane.ledger.types import CostEvent
from costplane.money import parse_usd
from costplane.sdk.context import Scope
from costplane.sdk.runs import RunHandle, StepScope, new_node_id

__all__ = ["ToolScope", "tool"]


class ToolScope(StepScope):
    def __init__(self, name: str, cost_usd: str | int | Decimal | None = None) -> None:
        super().__init__(name, kind="tool", dimension="tool")
        self.cost_usd = cost_usd
        self.cost_nano = parse_usd(cost_usd) if cost_usd is not None else 0

    def _fresh(self) -> Scope:
        return ToolScope(self.name, self.cost_usd)

    def _before(self, run: RunHandle) -> None:
        run.guard.admit_tool(self.name)

    def _exit(self, exc: BaseException | None) -> None:
        run, node = self._run, self.node
        if run is not None and node is not None and self.cost_nano:
            ctx: Context = node.context
            event = CostEvent(id=new_node_id("evt"), ts=run.session.clock(), context=ctx,
                              provider="tool", model=self.name, cost_nano=self.cost_nano, kind="tool",
                              endpoint="tool", status="ok" if exc is None else "error")
            self.node = replace(node, event_id=event.id)
            run.guard.charge(self.cost_nano)
            run.session.record(events=[event])
        super()._exit(exc)


def tool(name: str, *, cost_usd: str | int | Decimal | None = None) -> ToolScope:
    """A tool call of the current run (context manager or decorator)."""
    return ToolScope(name, cost_usd)
