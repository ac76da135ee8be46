"""Agent runs, pipeline runs and named steps: the nodes of a run tree, and the run's guard.

    with costplane.agent_run("support-bot", budget_usd="0.05", max_steps=20, session=s) as run:
        with costplane.step("triage"):
            ...

A run is a `Scope`: a context manager (sync or async) and a decorator. Inside it the
attribution context carries `run` (and `agent` / `pipeline`, `experiment`), so every LLM
call — through the gateway or direct — is attributed to it. A run nested in another is a
subtree of the outer run, and its spend also counts against the outer run's guard.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from decimal import Decimal
from typing import Any

from costplane.ledger.runtypes import RunNode
from costplane.money import MoneyError, parse_usd
from costplane.sdk.context import Frame, Scope, current_frame
from costplane.sdk.guards import GuardError, RunGuard
from costplane.sdk.session import Session

__all__ = ["RunHandle", "RunScope", "StepScope", "agent_run", "new_node_id", "pipeline_run", "require_session", "step"]


def new_node_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def require_session(session: Session | None, what: str) -> Session:
    found = session or current_frame().session
    if found is None:
        raise RuntimeError(f"{what} needs a costplane Session: pass session=costplane.Session(...) or call it "
                           "inside a run started with one")
    return found


def _usd(value: str | int | Decimal | float | None, field: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_usd(str(value) if isinstance(value, float) else value)
    except MoneyError as exc:
        raise ValueError(f"{field}: {exc}") from None


class RunHandle:
    """The live run: its id, guard, root (top-level run id) and session."""

    def __init__(self, run_id: str, name: str, kind: str, root: str, session: Session, guard: RunGuard) -> None:
        self.id = run_id
        self.name = name
        self.kind = kind
        self.root = root  # the top-level run whose tree this run belongs to
        self.session = session
        self.guard = guard
        self.node: RunNode | None = None

    @property
    def spent_nano(self) -> int:
        return self.guard.spent_nano

    @property
    def steps(self) -> int:
        return self.guard.steps

    def __repr__(self) -> str:
        return f"RunHandle({self.kind} {self.name!r}, run={self.id}, spent_nano={self.spent_nano})"


class RunScope(Scope):
    def __init__(self, name: str, kind: str, session: Session | None, run: str | None,
                 budget_usd: str | int | Decimal | float | None, max_steps: int | None,
                 max_tool_calls: int | None, dims: dict[str, str | None]) -> None:
        super().__init__()
        self._args = (name, kind, session, run, budget_usd, max_steps, max_tool_calls, dims)
        self.name, self.kind, self.session = name, kind, session
        self.run_id = run
        self.budget_nano = _usd(budget_usd, "budget_usd")
        self.max_steps, self.max_tool_calls = max_steps, max_tool_calls
        self.dims = {k: v for k, v in dims.items() if v is not None}
        self.handle: RunHandle | None = None
        self._outer: Frame | None = None

    def _fresh(self) -> Scope:
        return RunScope(*self._args)

    def _enter(self) -> RunHandle:
        outer = current_frame()
        session = require_session(self.session, f"{self.kind} run {self.name!r}")
        run_id = self.run_id or new_node_id("run")
        parent = outer.run
        guard = RunGuard(run_id, self.name, self.budget_nano, self.max_steps, self.max_tool_calls,
                         parent.guard if parent else None)
        handle = RunHandle(run_id, self.name, self.kind, parent.root if parent else run_id, session, guard)
        values = {**outer.values, **self.dims, "run": run_id}
        values[self.kind if self.kind in ("agent", "pipeline") else "agent"] = self.name
        frame = Frame(values, session, handle, run_id)
        node = RunNode(id=run_id, run=handle.root, kind=self.kind, name=self.name, started_at=session.clock(),
                       parent_id=outer.node if parent else None, context=frame.context(),
                       attributes=self._limits())
        handle.node = node
        session.record(nodes=[node])
        self.handle, self._outer = handle, frame
        return handle

    def _limits(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.budget_nano is not None:
            out["budget_nano"] = self.budget_nano
        if self.max_steps is not None:
            out["max_steps"] = self.max_steps
        if self.max_tool_calls is not None:
            out["max_tool_calls"] = self.max_tool_calls
        return out

    def _frame(self, outer: Frame) -> Frame:
        assert self._outer is not None
        return self._outer

    def _exit(self, exc: BaseException | None) -> None:
        handle = self.handle
        if handle is None or handle.node is None:
            return
        status = "ok" if exc is None else "stopped" if isinstance(exc, GuardError) else "error"
        attributes = {**handle.node.attributes, "spent_nano": handle.guard.spent_nano, "steps": handle.guard.steps,
                      "tool_calls": handle.guard.tool_calls}
        if exc is not None:
            attributes["error"] = f"{type(exc).__name__}: {exc}"
        handle.session.record(nodes=[replace(handle.node, ended_at=handle.session.clock(), status=status,
                                             attributes=attributes)])
        handle.session.flush()


def agent_run(name: str, *, budget_usd: str | int | Decimal | float | None = None, max_steps: int | None = None,
              max_tool_calls: int | None = None, run: str | None = None, session: Session | None = None,
              **dims: str | None) -> RunScope:
    """A guarded agent run (context manager or decorator); sets ctx.agent=name and ctx.run."""
    return RunScope(name, "agent", session, run, budget_usd, max_steps, max_tool_calls, dims)


def pipeline_run(name: str, *, experiment: str | None = None, run: str | None = None,
                 budget_usd: str | int | Decimal | float | None = None, session: Session | None = None,
                 **dims: str | None) -> RunScope:
    """A pipeline run (training, batch inference, …); sets ctx.pipeline=name, ctx.experiment, ctx.run."""
    return RunScope(name, "pipeline", session, run, budget_usd, None, None, {"experiment": experiment, **dims})


class StepScope(Scope):
    """A named step of the current run (a node of kind `kind`); sets ctx.step (or ctx.tool)."""

    def __init__(self, name: str, kind: str = "step", dimension: str = "step") -> None:
        super().__init__()
        self.name, self.kind, self.dimension = name, kind, dimension
        self.node: RunNode | None = None
        self._inner: Frame | None = None
        self._run: RunHandle | None = None

    def _fresh(self) -> Scope:
        return StepScope(self.name, self.kind, self.dimension)

    def _before(self, run: RunHandle) -> None:
        """Checks before the step starts (tools: the run's tool-call limit)."""

    def _enter(self) -> StepScope:
        outer = current_frame()
        values = {**outer.values, self.dimension: self.name}
        run = outer.run
        if run is None:  # no run: only attribution
            self._inner = replace(outer, values=values)
            return self
        self._before(run)
        node = RunNode(id=new_node_id(self.kind), run=run.root, kind=self.kind, name=self.name,
                       started_at=run.session.clock(), parent_id=outer.node,
                       context=replace(outer, values=values).context())
        run.session.record(nodes=[node])
        self.node, self._run = node, run
        self._inner = replace(outer, values=values, node=node.id)
        return self

    def _frame(self, outer: Frame) -> Frame:
        assert self._inner is not None
        return self._inner

    def _exit(self, exc: BaseException | None) -> None:
        if self.node is None or self._run is None:
            return
        status = "ok" if exc is None else "error"
        attributes = dict(self.node.attributes)
        if exc is not None:
            attributes["error"] = f"{type(exc).__name__}: {exc}"
        self._run.session.record(nodes=[replace(self.node, ended_at=self._run.session.clock(), status=status,
                                                attributes=attributes)])


def step(name: str) -> StepScope:
    """A named step (context manager or decorator): a tree node, and ctx.step=name."""
    return StepScope(name)
