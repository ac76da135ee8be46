"""What the demo shows: a snapshot of the store (the truth) and of what the clients saw, in Rich."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rich import box
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table

from costplane.app import Application
from costplane.attribution.context import Context
from costplane.core.claims import budget_claims
from costplane.demo.alerts import AlertLine, AlertLog
from costplane.demo.calls import PersonaCount, Tally
from costplane.ledger.store import SpendRow
from costplane.money import format_usd
from costplane.runs.tree import RunSummary, list_runs

__all__ = ["BudgetLine", "Snapshot", "render", "take_snapshot", "usd"]


CENT_NANO = 10_000_000


def usd(nano: int, places: int = 6) -> str:
    return "$" + format_usd(nano, places=places)


@dataclass(frozen=True, slots=True)
class BudgetLine:
    name: str
    window: str
    spent_nano: int
    reserved_nano: int
    limit_nano: int
    hard: bool


@dataclass(frozen=True, slots=True)
class Snapshot:
    revision: str
    gateway_url: str
    elapsed_s: float
    planned_s: float
    finished: bool
    by_team: Sequence[SpendRow]
    by_agent: Sequence[SpendRow]
    by_model: Sequence[SpendRow]
    by_kind: Sequence[SpendRow]
    by_provider: Sequence[SpendRow]  # one provider per protocol family: the protocol each call spoke
    by_pipeline: Sequence[SpendRow]
    denials_logged: Counter[str]
    notices: Counter[str]
    open_reservations: int
    budgets: Sequence[BudgetLine]
    requests: int = 0
    served: int = 0
    effects: Counter[str] = field(default_factory=Counter)
    cache_hits: int = 0
    denials_seen: Counter[str] = field(default_factory=Counter)
    personas: dict[str, PersonaCount] = field(default_factory=dict)
    alerts: Sequence[AlertLine] = ()
    stopped_runs: Sequence[RunSummary] = ()  # read once the workload finished

    @property
    def total_nano(self) -> int:
        return sum(row.cost_nano for row in self.by_kind)

    @property
    def events(self) -> int:
        return sum(row.events for row in self.by_kind)

    def saved_nano(self, kind: str) -> int:
        return sum(row.saved_nano for row in self.by_kind if row.group.get("kind") == kind)


def _budget_lines(application: Application) -> list[BudgetLine]:
    """Usage of every unpartitioned dollar budget, read from the same counters the core reserves on."""
    specs = [b for b in application.bundle.budgets.values() if b.amount_nano is not None and not b.per]
    claims = budget_claims(specs, Context(), "", 0, datetime.now(UTC))
    states = application.store.claim_states(claims)
    windows = {b.name: b.window.describe() for b in specs}
    return [BudgetLine(s.budget, windows.get(s.budget, ""), s.spent_nano, s.reserved_nano, s.limit_nano or 0,
                       s.hard) for s in states]


def take_snapshot(application: Application, tally: Tally, alerts: AlertLog, gateway_url: str,
                  elapsed_s: float, planned_s: float, finished: bool) -> Snapshot:
    """Read the store (thread-safe, so this may run off the event loop) next to a copy of the tally."""
    store = application.store
    engine_policies = application.bundle.engine.bundle.policies
    notify = {p.name for p in engine_policies if p.effect == "notify"}
    denials: Counter[str] = Counter()
    notices: Counter[str] = Counter()
    for decision in store.list_decisions(limit=100_000):
        if decision.effect == "deny":
            denials[str(decision.result.get("code", "denied"))] += 1
            continue
        for name in decision.policies:  # notices of admitted requests (a denied one notifies nobody)
            if name in notify:
                notices[name] += 1
    return Snapshot(
        revision=application.bundle.revision, gateway_url=gateway_url, elapsed_s=elapsed_s,
        planned_s=planned_s, finished=finished,
        by_team=store.spend(group_by=["team"]), by_agent=store.spend(group_by=["agent"]),
        by_model=store.spend(group_by=["model"]), by_kind=store.spend(group_by=["kind"]),
        by_provider=store.spend(group_by=["provider"]), by_pipeline=store.spend(group_by=["pipeline"]),
        denials_logged=denials, notices=notices, open_reservations=store.open_reservations(),
        budgets=_budget_lines(application), requests=tally.requests, served=tally.ok,
        effects=tally.effects, cache_hits=tally.cache_hits, denials_seen=tally.denials, personas=tally.personas,
        alerts=alerts.lines(), stopped_runs=_stopped_runs(application) if finished else (),
    )


def _stopped_runs(application: Application) -> list[RunSummary]:
    """The runs the core stopped, as `costplane runs list` shows them (runs.ending)."""
    return sorted((r for r in list_runs(application.store, limit=500) if r.status == "stopped"),
                  key=lambda r: r.run)


def _table(title: str, *columns: tuple[str, str], header: bool = True) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", show_header=header, show_edge=False,
                  pad_edge=False, box=box.SIMPLE_HEAD)
    for index, (name, justify) in enumerate(columns):
        right = justify == "right"  # numbers and the first (name) column never wrap; text columns fold
        table.add_column(name, justify="right" if right else "left", no_wrap=right or index == 0,
                         overflow="fold")
    return table


def _spend_table(title: str, dimension: str, rows: Sequence[SpendRow]) -> Table:
    table = _table(title, (dimension, "left"), ("spend", "right"), ("calls", "right"), ("saved", "right"))
    for row in rows:
        name = row.group.get(dimension) or f"(no {dimension})"
        saved = f"[green]{usd(row.saved_nano)}[/green]" if row.saved_nano else ""
        table.add_row(name, usd(row.cost_nano), str(row.events), saved)
    return table


def _governance_table(s: Snapshot) -> Table:
    table = _table("Governance", ("what", "left"), ("value", "right"), header=False)
    table.add_row("requests sent / served", f"{s.requests} / {s.served}")
    table.add_row("cost events / total spend", f"{s.events} / {usd(s.total_nano)}")
    table.add_row("rerouted (effect: route)", str(s.effects.get("route", 0)))
    table.add_row("mutated (max_tokens capped)", str(s.effects.get("mutate", 0)))
    table.add_row("saved by rerouting", usd(s.saved_nano("llm")))
    table.add_row("cache hits / saved", f"{s.cache_hits} / {usd(s.saved_nano('cache_hit'))}")
    for name, count in sorted(s.notices.items()):
        table.add_row(f"notify: {name}", str(count))
    style = "green" if s.open_reservations == 0 else "yellow"
    table.add_row("open reservations", f"[{style}]{s.open_reservations}[/{style}]")
    return table


def _denials_table(s: Snapshot) -> Table:
    table = _table("Denials by reason", ("code", "left"), ("clients saw", "right"), ("decision log", "right"))
    for code in sorted(set(s.denials_seen) | set(s.denials_logged)):
        seen, logged = s.denials_seen.get(code, 0), s.denials_logged.get(code, 0)
        table.add_row(f"[red]{code}[/red]", str(seen), str(logged))
    return table


def _window(text: str) -> str:
    """'calendar month (Europe/Berlin)' -> 'month Europe/Berlin'; 'rolling 3600s' -> 'rolling 1h'."""
    if text.startswith("rolling ") and text.endswith("s") and text[8:-1].isdigit():
        seconds = int(text[8:-1])
        for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
            if seconds % size == 0:
                return f"rolling {seconds // size}{unit}"
    return text.replace("calendar ", "").replace("(", "").replace(")", "")


def _budgets_table(s: Snapshot) -> Table:
    table = _table("Budgets", ("budget", "left"), ("window", "left"), ("spent", "right"), ("limit", "right"),
                   ("used", "right"))
    for b in s.budgets:
        used = (b.spent_nano + b.reserved_nano) * 100 // b.limit_nano if b.limit_nano else 0
        style = "red" if used >= 100 or (b.hard and used >= 80) else "yellow" if used >= 50 else "green"
        places = 2 if b.limit_nano % CENT_NANO == 0 else 4  # a budget of a fraction of a cent shows its digits
        table.add_row(b.name + ("" if b.hard else " (soft)"), _window(b.window), usd(b.spent_nano),
                      usd(b.limit_nano, places), f"[{style}]{used}%[/{style}]")
    return table


def _personas_table(s: Snapshot) -> Table:
    table = _table("Personas", ("persona", "left"), ("calls", "right"), ("ok", "right"), ("denied", "right"),
                   ("last answer", "left"))
    for name, c in sorted(s.personas.items()):
        table.add_row(name, str(c.requests), str(c.ok), str(c.denied), c.last)
    return table


def _alerts_table(s: Snapshot) -> Table:
    table = _table("Alerts raised by the core", ("kind", "left"), ("subject", "left"), ("count", "right"),
                   ("latest message", "left"))
    for line in s.alerts:
        table.add_row(line.kind, line.subject, str(line.count), line.latest)
    return table


def _stopped_table(s: Snapshot) -> Table:
    table = _table("Runs stopped (costplane runs list)", ("run", "left"), ("agent / pipeline", "left"),
                   ("spent", "right"), ("calls", "right"), ("stopped by", "left"), ("decision", "left"))
    for run in s.stopped_runs:
        stop = run.stopped_by or {}
        by = f"{stop.get('kind', '?')} {stop['name']}" if stop.get("name") else str(stop.get("kind", "?"))
        table.add_row(run.run, run.agent or run.pipeline or "", usd(run.cost_nano), str(run.events),
                      f"[red]{by}[/red]", str(stop.get("decision_id") or ""))
    return table


def render(s: Snapshot, console: Console) -> RenderableType:
    """The summary panel; two tables side by side where the console is wide enough."""
    state = "[green]finished[/green]" if s.finished else "[yellow]running[/yellow]"
    head = (f"{state} {s.elapsed_s:.1f}s of ~{s.planned_s:.0f}s   gateway {s.gateway_url}\n"
            f"bundle {s.revision}")
    pairs = [(_spend_table("Spend by team", "team", s.by_team),
              _spend_table("Spend by agent", "agent", s.by_agent)),
             (_spend_table("Spend by provider", "provider", s.by_provider),
              _spend_table("Spend by pipeline", "pipeline", s.by_pipeline)),
             (_spend_table("Spend by model", "model", s.by_model), _governance_table(s)),
             (_denials_table(s), _personas_table(s))]
    parts: list[RenderableType] = [head]
    for left, right in pairs:
        needed = sum(Measurement.get(console, console.options, t).maximum for t in (left, right)) + 4 + 4
        if needed <= console.width:
            grid = Table.grid(padding=(0, 4))
            grid.add_row(left, right)
            parts.append(grid)
        else:
            parts.extend((left, right))
    parts.append(_budgets_table(s))
    if s.alerts:
        parts.append(_alerts_table(s))
    if s.stopped_runs:
        parts.append(_stopped_table(s))
    return Panel(Group(*parts), title="costplane demo", title_align="left")
