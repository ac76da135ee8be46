"""`costplane users create|list|token|disable`: local users of the API and their API tokens.

Passwords are never taken on the command line: they are prompted for (twice) or read from
stdin with `--password-stdin`. Tokens are printed once and stored hashed.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.table import Table

from costplane.cli.common import CONFIG_OPTION, console, fail, load
from costplane.ledger.store import Store
from costplane.ledger.windows import WindowError, parse_duration

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Users and roles of the HTTP API: create, list, token, disable.")


def _store(config: Path | None) -> Store:
    from costplane.ledger.open import open_store

    store = open_store(load(config).store_url)
    store.migrate()
    return store


@app.command()
def create(
    name: str = typer.Argument(..., help="the user's login name"),
    role: str = typer.Option(..., help="admin | finance | developer | viewer"),
    team: list[str] = typer.Option([], "--team", help="a team a developer/viewer is scoped to (repeatable)"),
    projects: str = typer.Option("", "--projects", help="projects a developer/viewer is also scoped to: p1,p2"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin"),
    no_password: bool = typer.Option(False, "--no-password", help="token-only user (no dashboard login)"),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Create a local user (the password is prompted for, or read with --password-stdin)."""
    from costplane.api.credentials import CredentialError, new_user

    password: str | None = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not no_password:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    store = _store(config)
    try:
        user = new_user(store, name, role, team, password, projects.split(","))
    except CredentialError as exc:
        fail(f"--{exc.field}: {exc}" if exc.field in ("role", "team", "teams") else f"{exc.field}: {exc}")
    finally:
        store.close()
    scope = ", ".join(user.teams) if user.teams else "every team"
    if user.projects:
        scope += f"; projects {', '.join(user.projects)}"
    console.print(f"user [bold]{user.name}[/bold] ({user.role}, {scope}) created: {user.id}")


@app.command("list")
def list_users(config: Path | None = CONFIG_OPTION) -> None:
    """List users (never their password hashes)."""
    store = _store(config)
    try:
        users = store.list_users()
    finally:
        store.close()
    table = Table("name", "role", "teams", "projects", "created", "disabled", "id")
    for user in users:
        table.add_row(user.name, user.role, ", ".join(user.teams) or ("-" if user.projects else "(all)"),
                      ", ".join(user.projects) or "-",
                      user.created_at.strftime("%Y-%m-%d %H:%M UTC"),
                      user.disabled_at.strftime("%Y-%m-%d %H:%M UTC") if user.disabled_at else "-", user.id)
    console.print(table)


@app.command()
def token(
    name: str = typer.Argument(..., help="the user's login name"),
    label: str = typer.Option("api", "--label", help="what the token is for"),
    expires: str | None = typer.Option(None, help="lifetime such as 30d"),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Issue an API token for a user. Prints the secret once."""
    from costplane.api.credentials import CredentialError, issue_token

    expires_at = None
    if expires is not None:
        try:
            expires_at = datetime.now(UTC) + timedelta(seconds=parse_duration(expires))
        except WindowError as exc:
            fail(f"--expires: {exc}")
    store = _store(config)
    try:
        user = store.user_by_name(name)
        if user is None:
            fail(f"no user named {name!r}")
        secret, record = issue_token(store, user, label, expires_at)
    except CredentialError as exc:
        fail(str(exc))
    finally:
        store.close()
    console.print(f"token [bold]{record.id}[/bold] for {name} (secret shown once, store it now):")
    typer.echo(secret)


@app.command()
def disable(name: str = typer.Argument(..., help="the user's login name"), config: Path | None = CONFIG_OPTION) -> None:
    """Disable a user: every token of theirs stops working at once."""
    store = _store(config)
    try:
        user = store.user_by_name(name)
        done = user is not None and store.disable_user(user.id, datetime.now(UTC))
    finally:
        store.close()
    if not done:
        fail(f"no active user named {name!r}")
    console.print(f"disabled {name}")
