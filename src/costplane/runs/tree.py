"""Run trees: run → steps / tool calls / nested runs → LLM calls, with cost, tokens and duration.

Built from the ledger on demand, so a tree is live while its run is: nodes are written when
they start, cost events as calls settle. Where each cost event hangs:

1. the node that links it (`event_id`: an ingested LLM span, a priced tool call);
2. the node named by its `node` tag (the SDK sends the current node with every call);
3. the nested run named by its `run` dimension;
4. the root (e.g. calls that only carried `x-costplane-run`).

How a run ended (status, `stopped_by`) is derived by `runs.ending` from the run's latest
decision and its cost events, so a run seen only through the gateway tells the truth too; a
run without a root node takes its start, agent and pipeline from its events and decisions.
The list is built from a constant number of statements (roots, their nested runs, one grouped
activity query, the latest decisions, the pending reservations), whatever the number of runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from costplane.ledger.calls import SUPERSEDED
from costplane.ledger.runtypes import RunActivity, RunNode
from costplane.ledger.store import Store
from costplane.ledger.types import CostEvent, DecisionRecord
from costplane.money import format_usd
from costplane.runs.ending import Ending, pending_reservation, run_ending

__all__ = ["RunSummary", "TreeNode", "build_tree", "list_runs"]

ROOT_KINDS = frozenset({"run", "agent", "pipeline"})


@dataclass
class TreeNode:
    id: str
    kind: str  # run | agent | pipeline | step | tool | llm | gpu | span | …
    name: str
    status: str = "ok"
    started_at: datetime | None = None
    ended_at: datetime | None = None
    cost_nano: int = 0  # this node's own cost (its events)
    input_tokens: int = 0
    output_tokens: int = 0
    calls: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)
    children: list[TreeNode] = field(default_factory=list)
    stopped_by: Mapping[str, Any] | None = None  # the root of a stopped run: what stopped it

    @property
    def total_cost_nano(self) -> int:
        return self.cost_nano + sum(c.total_cost_nano for c in self.children)

    @property
    def total_tokens(self) -> tuple[int, int]:
        inp, out = self.input_tokens, self.output_tokens
        for child in self.children:
            ci, co = child.total_tokens
            inp, out = inp + ci, out + co
        return inp, out

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, (self.ended_at - self.started_at).total_seconds())

    def walk(self) -> Iterator[TreeNode]:
        yield self
        for child in self.children:
            yield from child.walk()

    def to_json(self) -> dict[str, Any]:
        inp, out = self.total_tokens
        return {"id": self.id, "kind": self.kind, "name": self.name, "status": self.status,
                "started_at": self.started_at.isoformat() if self.started_at else None,
                "ended_at": self.ended_at.isoformat() if self.ended_at else None,
                "duration_s": self.duration_s, "cost_usd": format_usd(self.total_cost_nano),
                "cost_nano": self.total_cost_nano, "own_cost_nano": self.cost_nano,
                "input_tokens": inp, "output_tokens": out, "calls": self.calls,
                "attributes": self.attributes, "stopped_by": None if self.stopped_by is None else dict(self.stopped_by),
                "children": [c.to_json() for c in self.children]}


def _from_node(node: RunNode) -> TreeNode:
    return TreeNode(node.id, node.kind, node.name, node.status, node.started_at, node.ended_at,
                    attributes=dict(node.attributes))


def _add_event(target: TreeNode, event: CostEvent) -> None:
    target.cost_nano += event.cost_nano
    target.input_tokens += event.usage.input_tokens
    target.output_tokens += event.usage.output_tokens
    target.calls += 1


def _event_leaf(event: CostEvent) -> TreeNode:
    ended = event.ts
    started = datetime.fromtimestamp(ended.timestamp() - event.latency_ms / 1000, tz=ended.tzinfo)
    name = event.model if event.kind in ("llm", "cache_hit") else f"{event.kind}: {event.model}"
    leaf = TreeNode(event.id, event.kind, name, event.status, started, ended,
                    attributes={"provider": event.provider, "requested_model": event.requested_model,
                                "decision_id": event.decision_id})
    _add_event(leaf, event)
    return leaf


def _merged(parts: Sequence[RunActivity]) -> RunActivity | None:
    """The activity of a run and its nested runs as one."""
    if not parts:
        return None

    def latest(values: Sequence[datetime | None]) -> datetime | None:
        return max((v for v in values if v is not None), default=None)

    return RunActivity(
        run=parts[0].run, first_at=min(p.first_at for p in parts), last_at=max(p.last_at for p in parts),
        events=sum(p.events for p in parts), cost_nano=sum(p.cost_nano for p in parts),
        input_tokens=sum(p.input_tokens for p in parts), output_tokens=sum(p.output_tokens for p in parts),
        decisions=sum(p.decisions for p in parts), agent=next((p.agent for p in parts if p.agent), None),
        pipeline=next((p.pipeline for p in parts if p.pipeline), None),
        experiment=next((p.experiment for p in parts if p.experiment), None),
        last_event_at=latest([p.last_event_at for p in parts]), last_error_at=latest([p.last_error_at for p in parts]),
        last_unadmitted_at=latest([p.last_unadmitted_at for p in parts]))


class _Facts:
    """Activity, latest decisions and pending reservations of groups of run ids (a run and its
    nested runs), read in one statement each."""

    def __init__(self, store: Store, groups: Mapping[str, Sequence[str]],
                 activity: Mapping[str, RunActivity] | None = None, since: datetime | None = None) -> None:
        ids = list(dict.fromkeys(m for members in groups.values() for m in members))
        if activity is None:
            activity = {a.run: a for a in store.run_activity(runs=ids, since=since)} if ids else {}
        decisions = store.latest_decisions(ids) if ids else {}
        self.activity: dict[str, RunActivity | None] = {}
        self.decision: dict[str, DecisionRecord | None] = {}
        self.pending: dict[str, str | None] = {}
        for run, members in groups.items():
            self.activity[run] = _merged([activity[m] for m in members if m in activity])
            found = [decisions[m] for m in members if m in decisions]
            self.decision[run] = max(found, key=lambda d: (d.ts, d.id)) if found else None
            self.pending[run] = pending_reservation(self.activity[run], self.decision[run])
        wanted = [r for r in self.pending.values() if r]
        self.reservations = store.reservation_statuses(wanted) if wanted else {}

    def ending(self, run: str, node: RunNode | None = None) -> Ending:
        reservation = self.pending.get(run)
        return run_ending(self.activity.get(run), self.decision.get(run),
                          self.reservations.get(reservation) if reservation else None,
                          node.status if node is not None else None,
                          node.attributes if node is not None else None, node.ended_at if node is not None else None)


def _denial_leaf(decision: DecisionRecord, stop: Mapping[str, Any]) -> TreeNode:
    return TreeNode(decision.id, "denial", str(stop["code"]), "stopped", decision.ts, decision.ts,
                    attributes={"decision_id": decision.id, "stopped_by": stop["kind"], "name": stop["name"],
                                "reason": decision.reason, "status_code": decision.status_code})


def build_tree(store: Store, run: str) -> TreeNode | None:
    """The tree of one run (None when the ledger knows nothing of it)."""
    nodes = store.run_nodes(run)
    runs = [run] + [n.id for n in nodes if n.kind in ROOT_KINDS and n.id != run]
    events: dict[str, CostEvent] = {}
    for run_id in runs:
        for event in store.run_events(run_id):
            if event.status != SUPERSEDED:  # the same call as a gateway event of the run (ledger/calls.py)
                events.setdefault(event.id, event)
    facts = _Facts(store, {run: runs})
    decision = facts.decision[run]
    if not nodes and not events and decision is None:
        return None
    by_id = {n.id: _from_node(n) for n in nodes}
    root_node = next((n for n in nodes if n.id == run), None)
    ending = facts.ending(run, root_node)
    root = by_id.get(run)
    if root is None:
        activity = facts.activity[run]
        first = activity.first_at if activity is not None else None
        last = activity.last_at if activity is not None and ending.status != "running" else None
        attributes = {} if activity is None else {
            name: value for name, value in (("agent", activity.agent), ("pipeline", activity.pipeline),
                                            ("experiment", activity.experiment)) if value}
        if decision is not None:
            for name in ("agent", "pipeline", "experiment"):
                value = decision.context.get(name)
                if value and name not in attributes:
                    attributes[name] = value
        root = by_id[run] = TreeNode(run, "run", run, ending.status, first, last, attributes=attributes)
    root.status, root.stopped_by = ending.status, ending.stopped_by
    for node in nodes:
        if node.id == run:
            continue
        parent = by_id.get(node.parent_id or "") or root
        parent.children.append(by_id[node.id])
    linked = {n.event_id: by_id[n.id] for n in nodes if n.event_id}
    for event in sorted(events.values(), key=lambda e: (e.ts, e.id)):
        owner = linked.get(event.id)
        if owner is not None:
            _add_event(owner, event)
            continue
        parent = by_id.get(event.context.tags.get("node", "")) or by_id.get(event.context.run or "") or root
        parent.children.append(_event_leaf(event))
    if ending.stopped_by is not None and decision is not None and ending.stopped_by["decision_id"] == decision.id:
        parent = by_id.get(decision.context.tags.get("node", "")) or by_id.get(decision.context.run or "") or root
        parent.children.append(_denial_leaf(decision, ending.stopped_by))
    for item in root.walk():
        item.children.sort(key=lambda c: (c.started_at is None, c.started_at or datetime.min, c.id))
    return root


@dataclass(frozen=True, slots=True)
class RunSummary:
    run: str
    name: str
    kind: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    cost_nano: int
    events: int
    input_tokens: int
    output_tokens: int
    agent: str | None = None
    pipeline: str | None = None
    experiment: str | None = None
    stopped_by: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run, "name": self.name, "kind": self.kind, "status": self.status,
                "started_at": self.started_at.isoformat() if self.started_at else None,
                "ended_at": self.ended_at.isoformat() if self.ended_at else None,
                "cost_usd": format_usd(self.cost_nano), "cost_nano": self.cost_nano, "events": self.events,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "agent": self.agent, "pipeline": self.pipeline, "experiment": self.experiment,
                "stopped_by": None if self.stopped_by is None else dict(self.stopped_by)}


def list_runs(store: Store, *, since: datetime | None = None, limit: int = 50) -> list[RunSummary]:
    """Top-level runs, newest first: SDK/OTLP runs (root nodes, their nested runs' cost included) and
    runs only known from cost events and decisions (calls that carried `x-costplane-run`), each with
    how it ended (`runs.ending`)."""
    roots = store.run_roots(since=since, limit=limit)
    members = store.run_members([r.id for r in roots]) if roots else {}
    groups: dict[str, list[str]] = {r.id: [r.id, *members.get(r.id, [])] for r in roots}
    grouped = {m for ids in groups.values() for m in ids}
    recent = store.run_activity(since=since, limit=limit + len(grouped))
    loose = [a for a in recent if a.run not in grouped][:limit]
    activity = {a.run: a for a in store.run_activity(runs=sorted(grouped), since=since)} if grouped else {}
    activity.update({a.run: a for a in loose})
    facts = _Facts(store, {**groups, **{a.run: [a.run] for a in loose}}, activity)
    out: list[RunSummary] = []
    for node in roots:
        act = facts.activity[node.id]
        ending = facts.ending(node.id, node)
        ctx = node.context
        out.append(RunSummary(
            node.id, node.name, node.kind, ending.status, node.started_at, node.ended_at,
            act.cost_nano if act else 0, act.events if act else 0, act.input_tokens if act else 0,
            act.output_tokens if act else 0, ctx.agent or (act.agent if act else None),
            ctx.pipeline or (act.pipeline if act else None), ctx.experiment or (act.experiment if act else None),
            ending.stopped_by))
    for act in loose:
        ending = facts.ending(act.run)
        seen = facts.decision[act.run]
        dctx = seen.context if seen is not None else None
        out.append(RunSummary(
            act.run, act.run, "run", ending.status, act.first_at, None if ending.status == "running" else act.last_at,
            act.cost_nano, act.events, act.input_tokens, act.output_tokens,
            act.agent or (dctx.agent if dctx else None), act.pipeline or (dctx.pipeline if dctx else None),
            act.experiment or (dctx.experiment if dctx else None), ending.stopped_by))
    out.sort(key=lambda s: (s.started_at is None, -(s.started_at.timestamp() if s.started_at else 0), s.run))
    return out[:limit]
