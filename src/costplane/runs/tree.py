"""Run trees: run → steps / tool calls / nested runs → LLM calls, with cost, tokens and duration.

Built from the ledger on demand, so a tree is live while its run is: nodes are written when
they start, cost events as calls settle. Where each cost event hangs:

1. the node that links it (`event_id`: an ingested LLM span, a priced tool call);
2. the node named by its `node` tag (the SDK sends the current node with every call);
3. the nested run named by its `run` dimension;
4. the root (e.g. calls that only carried `x-costplane-run`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from costplane.ledger.runtypes import RunNode
from costplane.ledger.store import Store
from costplane.ledger.types import CostEvent
from costplane.money import format_usd

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
                "attributes": self.attributes, "children": [c.to_json() for c in self.children]}


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


def build_tree(store: Store, run: str) -> TreeNode | None:
    """The tree of one run (None when the ledger knows nothing of it)."""
    nodes = store.run_nodes(run)
    runs = [run] + [n.id for n in nodes if n.kind in ROOT_KINDS and n.id != run]
    events: dict[str, CostEvent] = {}
    for run_id in runs:
        for event in store.run_events(run_id):
            events.setdefault(event.id, event)
    if not nodes and not events:
        return None
    by_id = {n.id: _from_node(n) for n in nodes}
    root = by_id.get(run)
    if root is None:
        first = min((e.ts for e in events.values()), default=None)
        last = max((e.ts for e in events.values()), default=None)
        root = by_id[run] = TreeNode(run, "run", run, "ok", first, last)
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

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run, "name": self.name, "kind": self.kind, "status": self.status,
                "started_at": self.started_at.isoformat() if self.started_at else None,
                "ended_at": self.ended_at.isoformat() if self.ended_at else None,
                "cost_usd": format_usd(self.cost_nano), "cost_nano": self.cost_nano, "events": self.events,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "agent": self.agent, "pipeline": self.pipeline, "experiment": self.experiment}


def list_runs(store: Store, *, since: datetime | None = None, limit: int = 50) -> list[RunSummary]:
    """Top-level runs, newest first: SDK/OTLP runs (root nodes, their nested runs' cost included) and
    runs only known from cost events (calls that carried `x-costplane-run`)."""
    spend = {str(row.group["run"]): row for row in store.spend(group_by=["run"], since=since) if row.group.get("run")}
    out: dict[str, RunSummary] = {}
    nested: set[str] = set()
    for node in store.run_roots(since=since, limit=limit):
        members = [node.id] + [n.id for n in store.run_nodes(node.id) if n.kind in ROOT_KINDS and n.id != node.id]
        nested.update(members[1:])
        rows = [spend[m] for m in members if m in spend]
        ctx = node.context
        out[node.id] = RunSummary(node.id, node.name, node.kind, node.status, node.started_at, node.ended_at,
                                  sum(r.cost_nano for r in rows), sum(r.events for r in rows),
                                  sum(r.input_tokens for r in rows), sum(r.output_tokens for r in rows),
                                  ctx.agent, ctx.pipeline, ctx.experiment)
    for run_id, row in spend.items():
        if run_id in out or run_id in nested or len(out) >= limit:
            continue
        out[run_id] = RunSummary(run_id, run_id, "run", "ok", None, None, row.cost_nano, row.events,
                                 row.input_tokens, row.output_tokens)
    return sorted(out.values(), key=lambda s: (s.started_at is None,
                                               -(s.started_at.timestamp() if s.started_at else 0)))[:limit]
