"""`costplane keys create|list|revoke`: virtual keys, shown once, stored hashed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.table import Table

from costplane.attribution.context import DIMENSIONS, InvalidAttribute
from costplane.cli.common import CONFIG_OPTION, console, fail, load
from costplane.ledger.store import Store
from costplane.ledger.windows import WindowError, parse_duration

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Virtual keys: create (shown once), list, revoke.")


def _store(config: Path | None) -> Store:
    from costplane.ledger.open import open_store

    store = open_store(load(config).store_url)
    store.migrate()
    return store


def _expiry(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.now(UTC) + timedelta(seconds=parse_duration(text))
    except WindowError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--expires: expected a duration such as 30d or an ISO date such as 2027-01-31, got {text!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command()
def create(
    name: str = typer.Option(..., "--name", help="what the key is for, e.g. support-bot-prod"),
    team: str | None = typer.Option(None), org: str | None = typer.Option(None),
    project: str | None = typer.Option(None), user: str | None = typer.Option(None),
    owner: str | None = typer.Option(None), tier: str | None = typer.Option(None),
    agent: str | None = typer.Option(None), pipeline: str | None = typer.Option(None),
    tag: list[str] = typer.Option([], "--tag", help="free tag bound to the key, name=value (repeatable)"),
    expires: str | None = typer.Option(None, help="duration (30d) or ISO date"),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Create a key bound to attribution values that requests can never override. Prints the secret once."""
    from costplane.gateway.keys import create_key

    attributes = {k: v for k, v in {"team": team, "org": org, "project": project, "user": user, "owner": owner,
                                    "tier": tier, "agent": agent, "pipeline": pipeline}.items() if v}
    for item in tag:
        if "=" not in item:
            fail(f"--tag: expected name=value, got {item!r}")
        tag_name, value = item.split("=", 1)
        if tag_name in DIMENSIONS:
            fail(f"--tag {tag_name}: that is a dimension; use --{tag_name}")
        attributes[tag_name] = value
    store = _store(config)
    try:
        secret, record = create_key(store, name, attributes, _expiry(expires))
    except InvalidAttribute as exc:
        fail(str(exc))
    finally:
        store.close()
    console.print(f"key [bold]{record.id}[/bold] ({name}) bound to {record.attributes or 'nothing'}")
    console.print("secret (shown once, store it now):")
    typer.echo(secret)


@app.command("list")
def list_keys(config: Path | None = CONFIG_OPTION) -> None:
    """List keys (never their secrets)."""
    store = _store(config)
    try:
        keys = store.list_keys()
    finally:
        store.close()
    table = Table("name", "prefix", "bound to", "created", "expires", "revoked")
    table.add_column("id", no_wrap=True)  # copied into `keys revoke`: never wrapped
    for key in keys:
        table.add_row(key.name, key.prefix + "…",
                      ", ".join(f"{k}={v}" for k, v in key.attributes.items()),
                      key.created_at.strftime("%Y-%m-%d %H:%M UTC"),
                      key.expires_at.strftime("%Y-%m-%d %H:%M UTC") if key.expires_at else "-",
                      key.revoked_at.strftime("%Y-%m-%d %H:%M UTC") if key.revoked_at else "-", key.id)
    console.print(table)


@app.command()
def revoke(key_id: str, config: Path | None = CONFIG_OPTION) -> None:
    """Revoke a key; the gateway (and every process sharing the store) refuses it from the next request."""
    store = _store(config)
    try:
        done = store.revoke_key(key_id, datetime.now(UTC))
    finally:
        store.close()
    if not done:
        fail(f"no active key with id {key_id!r}")
    console.print(f"revoked {key_id}")
