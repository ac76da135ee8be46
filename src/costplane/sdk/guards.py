"""Run guards: a run's dollar budget, step limit and tool-call limit, checked BEFORE each call.

An LLM call is admitted only if `spent + in flight + its worst case <= budget`, where the
worst case is `PriceSheet.max_cost_nano(input bound, max_tokens)` — the same bound the
gateway reserves (input bound from `costplane.gateway.tokens`, no tokenizer). So a run can
never spend past its budget, even with concurrent calls. A step is one LLM call or one
tool call. Nested runs check and charge every enclosing run too.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from costplane.money import format_usd

__all__ = ["BudgetExceeded", "GuardError", "RunGuard", "SpendRefused", "StepLimitExceeded", "ToolLimitExceeded"]


class GuardError(RuntimeError):
    """A run guard stopped a call before it was made; nothing was spent on it."""

    def __init__(self, run: str, name: str, limit: str, message: str) -> None:
        self.run = run
        self.name = name
        self.limit = limit  # budget | steps | tool_calls
        super().__init__(message)


class BudgetExceeded(GuardError):
    """The call's worst-case cost does not fit in what is left of the run's budget."""


class SpendRefused(GuardError):
    """The decision core refused the call (a bundle policy or budget, the loop guard, an unknown
    price): `code` and `decision_id` name the logged decision. Raised in direct mode with a store."""

    def __init__(self, run: str, code: str, message: str, decision_id: str | None) -> None:
        super().__init__(run, code, "bundle", message)
        self.code = code
        self.decision_id = decision_id


class StepLimitExceeded(GuardError):
    """The run already made max_steps steps (LLM calls + tool calls)."""


class ToolLimitExceeded(StepLimitExceeded):
    """The run already made max_tool_calls tool calls."""


@dataclass
class RunGuard:
    run: str
    name: str
    budget_nano: int | None = None
    max_steps: int | None = None
    max_tool_calls: int | None = None
    parent: RunGuard | None = None
    spent_nano: int = 0
    inflight_nano: int = 0
    steps: int = 0
    tool_calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def chain(self) -> list[RunGuard]:
        """This guard and every enclosing one, outermost first (the lock order)."""
        out: list[RunGuard] = []
        guard: RunGuard | None = self
        while guard is not None:
            out.append(guard)
            guard = guard.parent
        return out[::-1]

    def _locked(self) -> list[threading.Lock]:
        locks = [g._lock for g in self.chain()]
        for lock in locks:
            lock.acquire()
        return locks

    @staticmethod
    def _unlock(locks: list[threading.Lock]) -> None:
        for lock in reversed(locks):
            lock.release()

    def admit_llm(self, worst_nano: int, what: str) -> None:
        """Reserve `worst_nano` and one step on every run of the chain, or raise."""
        locks = self._locked()
        try:
            for guard in self.chain():
                guard._check_step(what)
                if guard.budget_nano is not None and (
                        guard.spent_nano + guard.inflight_nano + worst_nano > guard.budget_nano):
                    raise BudgetExceeded(guard.run, guard.name, "budget", (
                        f"agent run {guard.name!r} (run {guard.run}) stopped before {what}: spent "
                        f"{format_usd(guard.spent_nano)} USD + in flight {format_usd(guard.inflight_nano)} USD + "
                        f"this call's worst case {format_usd(worst_nano)} USD > budget "
                        f"{format_usd(guard.budget_nano)} USD (after {guard.steps} steps)"))
            for guard in self.chain():
                guard.inflight_nano += worst_nano
                guard.steps += 1
        finally:
            self._unlock(locks)

    def settle_llm(self, worst_nano: int, cost_nano: int) -> None:
        """The admitted call is over: its worst case is given back, its actual cost spent."""
        locks = self._locked()
        try:
            for guard in self.chain():
                guard.inflight_nano -= worst_nano
                guard.spent_nano += cost_nano
        finally:
            self._unlock(locks)

    def admit_tool(self, tool: str) -> None:
        locks = self._locked()
        try:
            for guard in self.chain():
                guard._check_step(f"tool call {tool!r}")
                if guard.max_tool_calls is not None and guard.tool_calls + 1 > guard.max_tool_calls:
                    raise ToolLimitExceeded(guard.run, guard.name, "tool_calls", (
                        f"agent run {guard.name!r} (run {guard.run}) stopped before tool call {tool!r}: "
                        f"{guard.tool_calls} tool calls made, limit max_tool_calls={guard.max_tool_calls}"))
            for guard in self.chain():
                guard.steps += 1
                guard.tool_calls += 1
        finally:
            self._unlock(locks)

    def charge(self, cost_nano: int) -> None:
        """Spend that was not admitted in advance (a tool's declared price, a GPU job)."""
        self.settle_llm(0, cost_nano)

    def _check_step(self, what: str) -> None:
        if self.max_steps is not None and self.steps + 1 > self.max_steps:
            raise StepLimitExceeded(self.run, self.name, "steps", (
                f"agent run {self.name!r} (run {self.run}) stopped before {what}: {self.steps} steps made, "
                f"limit max_steps={self.max_steps}"))
