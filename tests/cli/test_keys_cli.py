"""`costplane keys create|list|revoke` against a real store: shown once, stored hashed, revocable."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from costplane.cli.main import app
from costplane.gateway.keys import hash_secret
from costplane.ledger.open import open_store

runner = CliRunner()


def config(tmp_path: Path) -> Path:
    path = tmp_path / "costplane.yaml"
    path.write_text("store: sqlite:///keys.db\n")
    return path


def test_create_prints_the_secret_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    result = runner.invoke(app, ["keys", "create", "--name", "bot", "--team", "support", "--agent", "support-bot",
                                 "--tag", "cost_center=cc-42", "--expires", "30d", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    assert secret.startswith("cpk_")
    store = open_store(f"sqlite:///{tmp_path}/keys.db")
    [key] = store.list_keys()
    assert key.secret_hash == hash_secret(secret) and secret not in repr(key)
    assert dict(key.attributes) == {"team": "support", "agent": "support-bot", "cost_center": "cc-42"}
    assert key.expires_at is not None
    listing = runner.invoke(app, ["keys", "list", "--config", str(cfg)])
    assert key.id in listing.output and secret not in listing.output
    revoked = runner.invoke(app, ["keys", "revoke", key.id, "--config", str(cfg)])
    assert revoked.exit_code == 0
    assert store.get_key(key.id).revoked_at is not None  # type: ignore[union-attr]
    again = runner.invoke(app, ["keys", "revoke", key.id, "--config", str(cfg)])
    assert again.exit_code == 1 and "no active key" in again.output
    store.close()


def test_bad_values_are_refused_with_the_field(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    bad_team = runner.invoke(app, ["keys", "create", "--name", "x", "--team", "bad team!", "--config", str(cfg)])
    assert bad_team.exit_code == 1 and "key.team" in bad_team.output
    bad_tag = runner.invoke(app, ["keys", "create", "--name", "x", "--tag", "novalue", "--config", str(cfg)])
    assert bad_tag.exit_code == 1 and "--tag: expected name=value" in bad_tag.output
    bad_expiry = runner.invoke(app, ["keys", "create", "--name", "x", "--expires", "soonish", "--config", str(cfg)])
    assert bad_expiry.exit_code == 1 and "--expires" in bad_expiry.output
    store = open_store(f"sqlite:///{tmp_path}/keys.db")
    assert store.list_keys() == []  # nothing half-created
    store.close()
