"""`costplane runs list|show`: run trees with cost, tokens and duration per node, live."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from costplane.cli.common import CONFIG_OPTION, console, fail
from costplane.cli.runsource import API_OPTION, KEY_OPTION, STORE_OPTION, Source, since_option

__all__ = ["app", "render_tree", "stopped_text"]

app = typer.Typer(no_args_is_help=True, help="Pipeline and agent runs: list them, show a run's live cost tree.")

_STYLE = {"ok": "green", "running": "yellow", "stopped": "red", "error": "red", "unpriced": "magenta"}


def _label(node: dict[str, Any]) -> str:
    duration = f"{node['duration_s']:.2f}s" if node.get("duration_s") is not None else "…"
    tokens = f"{node['input_tokens']}→{node['output_tokens']} tok" if node["input_tokens"] or node[
        "output_tokens"] else ""
    status = node["status"]
    colour = _STYLE.get(status, "white")
    attributes = node.get("attributes") or {}
    note = attributes.get("error") or (attributes.get("reason") if node["kind"] == "denial" else None)
    extra = f" [dim]{escape(str(note))}[/dim]" if note else ""
    stop = node.get("stopped_by")
    if stop:
        extra += f"  [red]stopped by {escape(stopped_text(stop))}[/red]"
        if stop.get("decision_id"):
            extra += f" [dim](decision {stop['decision_id']})[/dim]"
    return (f"[bold]{node['kind']}[/bold] {escape(str(node['name']))}  [cyan]${node['cost_usd']}[/cyan]  {tokens}  "
            f"{duration}  [{colour}]{status}[/{colour}]{extra}")


def stopped_text(stop: dict[str, Any]) -> str:
    """'budget agent-run-limits', 'loop_guard', 'policy experiments-no-reasoning-models'."""
    return f"{stop['kind']} {stop['name']}" if stop.get("name") else str(stop["kind"])


def render_tree(data: dict[str, Any]) -> Tree:
    tree = Tree(_label(data))

    def add(branch: Tree, node: dict[str, Any]) -> None:
        for child in node["children"]:
            add(branch.add(_label(child)), child)

    add(tree, data)
    return tree


def _tree(source: Source, run: str) -> dict[str, Any] | None:
    if source.store is not None:
        from costplane.runs.tree import build_tree

        tree = build_tree(source.store, run)
        return tree.to_json() if tree is not None else None
    found: dict[str, Any] | None = source.get(f"/v1/runs/{run}")
    return found


@app.command("show")
def show(run: str = typer.Argument(..., help="the run id"),
         live: bool = typer.Option(False, "--live", help="keep refreshing until the run ends (Ctrl-C to stop)"),
         interval: float = typer.Option(1.0, help="seconds between refreshes with --live"),
         config: Path | None = CONFIG_OPTION, store: str | None = STORE_OPTION,
         api: str | None = API_OPTION, key: str | None = KEY_OPTION) -> None:
    """The run's tree: run → steps → LLM and tool calls, with cost, tokens and duration at each node."""
    source = Source(config, store, api, key)
    try:
        data = _tree(source, run)
        if data is None:
            fail(f"no run {run!r} in the ledger")
        if not live:
            console.print(render_tree(data))
            return
        with Live(render_tree(data), console=console, refresh_per_second=4) as view:
            while data.get("status") == "running":
                time.sleep(interval)
                data = _tree(source, run) or data
                view.update(render_tree(data))
    except KeyboardInterrupt:
        pass
    finally:
        source.close()


@app.command("list")
def list_cmd(since: str | None = typer.Option(None, help="only runs of the last DURATION (e.g. 1d)"),
             limit: int = typer.Option(50, help="at most this many runs"),
             by: str | None = typer.Option(None, help="instead: cost grouped by dimensions, e.g. experiment,model "
                                                      "or agent"),
             config: Path | None = CONFIG_OPTION, store: str | None = STORE_OPTION,
             api: str | None = API_OPTION, key: str | None = KEY_OPTION) -> None:
    """Runs, newest first, with cost and tokens; or with --by, cost per experiment / model iteration / agent."""
    source = Source(config, store, api, key)
    start = since_option(since)
    try:
        if by:
            if source.store is None:
                fail("--by reads the store; run it without --api")
            from costplane.money import format_usd

            names = [b.strip() for b in by.split(",") if b.strip()]
            try:
                rows = source.store.spend(group_by=names, since=start)
            except ValueError as exc:
                fail(str(exc))
            table = Table(*names, "cost USD", "calls", "input tok", "output tok")
            for row in rows:
                table.add_row(*(str(row.group[n] or "-") for n in names), format_usd(row.cost_nano), str(row.events),
                              str(row.input_tokens), str(row.output_tokens))
            console.print(table)
            return
        if source.store is not None:
            from costplane.runs.tree import list_runs

            runs = [r.to_json() for r in list_runs(source.store, since=start, limit=limit)]
        else:
            runs = source.get("/v1/runs", since=start.isoformat() if start else None, limit=limit)["runs"]
        table = Table("kind", "name", "agent / pipeline", "experiment", "status", "stopped by", "started",
                      "cost USD", "calls", "tokens in→out")
        table.add_column("run", no_wrap=True)
        for r in runs:
            status = r["status"]
            colour = _STYLE.get(status, "white")
            stop = r.get("stopped_by")
            table.add_row(r["kind"], escape(r["name"]), escape(r["agent"] or r["pipeline"] or "-"),
                          escape(r["experiment"] or "-"), f"[{colour}]{status}[/{colour}]",
                          escape(stopped_text(stop)) if stop else "-", (r["started_at"] or "-")[:19], r["cost_usd"],
                          str(r["events"]), f"{r['input_tokens']}→{r['output_tokens']}", escape(r["run"]))
        console.print(table)
    finally:
        source.close()
