"""`costplane env launch|extend|teardown|approve|reject|list|show`: governed environments over the HTTP API."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from costplane.cli.common import CONFIG_OPTION, console, fail, load
from costplane.lifecycle.client import ApiError, EnvironmentClient

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Governed environments from blueprints: launch, extend, teardown, "
                                              "approve/reject, list, show (talks to `costplane serve`).")


class Format(StrEnum):
    text = "text"
    json = "json"


SERVER = typer.Option(None, "--server", help="server URL (default http://<server.host>:<server.port> from "
                                             "costplane.yaml)", envvar="COSTPLANE_SERVER")
KEY = typer.Option(None, "--key", help="costplane key (or env COSTPLANE_KEY)", envvar="COSTPLANE_KEY")
FORMAT = typer.Option(Format.text, "--format", help="text (tables) or json")


def _call(server: str | None, key: str | None, config: Path | None,
          action: Callable[[EnvironmentClient], Any]) -> Any:
    if not key:
        fail("no costplane key: pass --key or set COSTPLANE_KEY (create one with `costplane keys create`)")
    if server is None:
        settings = load(config)
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        server = f"http://{host}:{settings.port}"
    try:
        with EnvironmentClient(server, key) as client:
            return action(client)
    except ApiError as exc:
        where = f" (field: {exc.field})" if exc.field else ""
        status = f"HTTP {exc.status} " if exc.status else ""
        fail(f"{status}{exc.code}: {exc}{where}")


def _pairs(items: list[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            fail(f"{option}: expected name=value, got {item!r}")
        name, value = item.split("=", 1)
        out[name.strip()] = value
    return out


def _left(seconds: int) -> str:
    hours, rest = divmod(max(0, seconds), 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s"


def _summary(env: dict[str, Any], fmt: Format, verb: str) -> None:
    if fmt is Format.json:
        typer.echo(json.dumps(env, indent=2))
        return
    state = env.get("state")
    console.print(f"{verb} [bold]{env['id']}[/bold] ({env.get('blueprint')}): {state}, "
                  f"{env.get('hourly_usd')} USD/h, projected {env.get('projected_usd')} USD, "
                  f"expires {env.get('expires_at')}", highlight=False)
    if state == "pending_approval":
        console.print("waiting for an approver: `costplane env approve " + str(env["id"]) + "`", highlight=False)


@app.command()
def launch(
    blueprint: str = typer.Argument(..., help="blueprint name in the bundle"),
    inputs: list[str] = typer.Option([], "--input", "-i", help="blueprint input name=value (repeatable)"),
    ttl: str | None = typer.Option(None, "--ttl", help="time to live, e.g. 2h (default: the blueprint's)"),
    context: list[str] = typer.Option([], "--context", help="extra context/tag name=value the key does not bind"),
    server: str | None = SERVER, key: str | None = KEY, fmt: Format = FORMAT, config: Path | None = CONFIG_OPTION,
) -> None:
    """Launch an environment from a blueprint (policy-checked, budget-reserved)."""
    given, extra = _pairs(inputs, "--input"), _pairs(context, "--context")
    env = _call(server, key, config, lambda c: c.launch(blueprint, given, ttl, extra))
    _summary(env, fmt, "launched")


@app.command()
def extend(env_id: str, by: str | None = typer.Option(None, "--by", help="e.g. 2h (default: blueprint extend_by)"),
           server: str | None = SERVER, key: str | None = KEY, fmt: Format = FORMAT,
           config: Path | None = CONFIG_OPTION) -> None:
    """Extend an environment's TTL (policy-checked; the reservation grows)."""
    _summary(_call(server, key, config, lambda c: c.extend(env_id, by)), fmt, "extended")


@app.command()
def teardown(env_id: str, server: str | None = SERVER, key: str | None = KEY, fmt: Format = FORMAT,
             config: Path | None = CONFIG_OPTION) -> None:
    """Tear an environment down now (its last cost is recorded)."""
    _summary(_call(server, key, config, lambda c: c.teardown(env_id)), fmt, "torn down")


@app.command()
def approve(env_id: str, server: str | None = SERVER, key: str | None = KEY, fmt: Format = FORMAT,
            config: Path | None = CONFIG_OPTION) -> None:
    """Approve a pending launch (needs a key tagged role=approver)."""
    _summary(_call(server, key, config, lambda c: c.approve(env_id)), fmt, "approved")


@app.command()
def reject(env_id: str, reason: str = typer.Option("", "--reason", help="why (recorded in the decisions log)"),
           server: str | None = SERVER, key: str | None = KEY, fmt: Format = FORMAT,
           config: Path | None = CONFIG_OPTION) -> None:
    """Reject a pending launch (needs a key tagged role=approver)."""
    _summary(_call(server, key, config, lambda c: c.reject(env_id, reason)), fmt, "rejected")


@app.command("list")
def list_envs(state: list[str] = typer.Option([], "--state", help="filter by state (repeatable), e.g. active"),
              server: str | None = SERVER, key: str | None = KEY, fmt: Format = FORMAT,
              config: Path | None = CONFIG_OPTION) -> None:
    """List environments, newest first."""
    found: list[dict[str, Any]] = _call(server, key, config, lambda c: c.list(tuple(state)))
    if fmt is Format.json:
        typer.echo(json.dumps(found, indent=2))
        return
    table = Table("blueprint", "state", "owner", "USD/h", "so far", "projected", "time left")
    table.add_column("id", no_wrap=True)
    for env in found:
        table.add_row(env["blueprint"], env["state"], env.get("owner") or "-", env["hourly_usd"],
                      env["cost_so_far_usd"], env["projected_usd"], _left(int(env["time_left_seconds"])), env["id"])
    console.print(table)


@app.command()
def show(env_id: str, server: str | None = SERVER, key: str | None = KEY, fmt: Format = FORMAT,
         config: Path | None = CONFIG_OPTION) -> None:
    """State, owner, cost so far, projected cost, time left and every transition of one environment."""
    env: dict[str, Any] = _call(server, key, config, lambda c: c.show(env_id))
    if fmt is Format.json:
        typer.echo(json.dumps(env, indent=2))
        return
    facts = Table(show_header=False, box=None)
    for label, value in (("id", env["id"]), ("blueprint", env["blueprint"]), ("state", env["state"]),
                         ("owner", env.get("owner") or "-"), ("hourly", f"{env['hourly_usd']} USD"),
                         ("cost so far", f"{env['cost_so_far_usd']} USD"),
                         ("projected", f"{env['projected_usd']} USD"),
                         ("time left", _left(int(env["time_left_seconds"]))), ("expires at", env["expires_at"]),
                         ("extensions", str(env["extensions"])), ("driver", str(env.get("driver"))),
                         ("ended", f"{env['ended_at']}: {env['end_reason']}" if env.get("ended_at") else "-")):
        facts.add_row(f"[bold]{label}[/bold]", str(value))
    console.print(facts)
    transitions = Table("time", "from", "to", "reason", "decision")
    for t in env.get("transitions") or []:
        transitions.add_row(t["ts"], t["from"] or "-", t["to"], t["reason"], t.get("decision_id") or "-")
    console.print(transitions)
