"""`costplane users`: password from stdin (never argv), token shown once, disable."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from costplane.api.credentials import token_user, verify_password
from costplane.cli.main import app
from costplane.ledger.open import open_store


def test_users_cli(tmp_path: Path) -> None:
    config = tmp_path / "costplane.yaml"
    config.write_text(f"store: sqlite:///{tmp_path}/u.db\n")
    runner = CliRunner()
    c = ["--config", str(config)]
    made = runner.invoke(app, ["users", "create", "ana", "--role", "developer", "--team", "alpha",
                               "--password-stdin", *c], input="s3cret-pass\n")
    assert made.exit_code == 0, made.output
    assert "s3cret" not in made.output
    refused = runner.invoke(app, ["users", "create", "bob", "--role", "developer", "--no-password", *c])
    assert refused.exit_code == 1 and "team" in refused.output
    issued = runner.invoke(app, ["users", "token", "ana", *c])
    assert issued.exit_code == 0, issued.output
    secret = issued.output.strip().splitlines()[-1]
    listed = runner.invoke(app, ["users", "list", *c])
    assert "ana" in listed.output and "developer" in listed.output and secret not in listed.output
    store = open_store(f"sqlite:///{tmp_path}/u.db")
    try:
        user = store.user_by_name("ana")
        assert user is not None and verify_password("s3cret-pass", user.password_hash)
        assert token_user(store, secret, datetime.now(UTC)) is not None
        assert runner.invoke(app, ["users", "disable", "ana", *c]).exit_code == 0
        assert token_user(store, secret, datetime.now(UTC)) is None
    finally:
        store.close()


def test_users_cli_projects(tmp_path: Path) -> None:
    config = tmp_path / "costplane.yaml"
    config.write_text(f"store: sqlite:///{tmp_path}/u.db\n")
    runner = CliRunner()
    c = ["--config", str(config)]
    made = runner.invoke(app, ["users", "create", "pia", "--role", "viewer", "--projects", "px, py,px",
                               "--no-password", *c])
    assert made.exit_code == 0, made.output
    both = runner.invoke(app, ["users", "create", "tom", "--role", "developer", "--team", "alpha", "--projects",
                               "px", "--no-password", *c])
    assert both.exit_code == 0, both.output
    listed = runner.invoke(app, ["users", "list", *c])
    assert "px, py" in listed.output
    store = open_store(f"sqlite:///{tmp_path}/u.db")
    try:
        pia, tom = store.user_by_name("pia"), store.user_by_name("tom")
        assert pia is not None and (pia.teams, pia.projects) == ((), ("px", "py"))
        assert tom is not None and (tom.teams, tom.projects) == (("alpha",), ("px",))
        assert store.schema_version() >= 9
    finally:
        store.close()


def test_v9_upgrade_keeps_existing_users(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    store = open_store(url)
    try:
        store.migrate(target=7)  # a database from before project scoping
        with sqlite3.connect(tmp_path / "old.db") as conn:
            conn.execute("INSERT INTO users (id, name, role, teams, password_hash, created_at) VALUES "
                         "('usr-1', 'old', 'developer', '[\"alpha\"]', '', 0)")
        store.migrate()
        user = store.user_by_name("old")
        assert user is not None and (user.teams, user.projects) == (("alpha",), ())
    finally:
        store.close()
