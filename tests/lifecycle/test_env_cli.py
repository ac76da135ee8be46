"""`costplane env …` against a real server over HTTP: tables, --format json, API errors without tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from costplane.cli.main import app
from costplane.serving import free_port

from .server import live_server

runner = CliRunner()


def test_env_commands_round_trip(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        user = ["--server", server.url, "--key", server.key(team="ml", owner="alice")]
        boss = ["--server", server.url, "--key", server.key(owner="carol", role="approver")]
        launched = runner.invoke(app, ["env", "launch", "noop-box", "--ttl", "30m", "--format", "json", *user])
        assert launched.exit_code == 0, launched.output
        env_id = json.loads(launched.output)["id"]
        text = runner.invoke(app, ["env", "launch", "gpu-box", "-i", "gpu_type=T4", "-i", "gpus=4", *user])
        assert text.exit_code == 0 and "pending_approval" in text.output and "env approve" in text.output
        listing = runner.invoke(app, ["env", "list", "--state", "active", *user], env={"COLUMNS": "200"})
        assert listing.exit_code == 0 and env_id in listing.output and "noop-box" in listing.output
        extended = runner.invoke(app, ["env", "extend", env_id, "--by", "10m", "--format", "json", *user])
        assert extended.exit_code == 0 and json.loads(extended.output)["extensions"] == 1
        shown = runner.invoke(app, ["env", "show", env_id, *user], env={"COLUMNS": "200"})
        assert shown.exit_code == 0, shown.output
        for label in ("cost so far", "projected", "time left", "owner", "alice", "extended by 600s"):
            assert label in shown.output
        pending = [e for e in json.loads(runner.invoke(app, ["env", "list", "--format", "json", *user]).output)
                   if e["state"] == "pending_approval"]
        assert runner.invoke(app, ["env", "approve", pending[0]["id"], *user]).exit_code == 1
        rejected = runner.invoke(app, ["env", "reject", pending[0]["id"], "--reason", "too big", *boss])
        assert rejected.exit_code == 0 and "rejected" in rejected.output
        down = runner.invoke(app, ["env", "teardown", env_id, "--format", "json", *user])
        assert down.exit_code == 0 and json.loads(down.output)["state"] == "torn_down"


def test_api_errors_are_clear_and_non_zero(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        user = ["--server", server.url, "--key", server.key(team="ml", owner="alice")]
        bad = runner.invoke(app, ["env", "launch", "gpu-box", "-i", "gpus=12", *user])
        assert bad.exit_code == 1 and "invalid_input" in bad.output and "field: inputs.gpus" in bad.output
        assert "Traceback" not in bad.output
        wrong_key = runner.invoke(app, ["env", "list", "--server", server.url, "--key", "cpk_nope"])
        assert wrong_key.exit_code == 1 and "HTTP 401 invalid_api_key" in wrong_key.output
        missing = runner.invoke(app, ["env", "show", "env_missing", *user])
        assert missing.exit_code == 1 and "unknown_environment" in missing.output
        assert runner.invoke(app, ["env", "launch", "noop-box", "-i", "novalue", *user]).exit_code == 1
    no_key = runner.invoke(app, ["env", "list", "--server", "http://127.0.0.1:1"], env={"COSTPLANE_KEY": ""})
    assert no_key.exit_code == 1 and "COSTPLANE_KEY" in no_key.output
    cfg = tmp_path / "costplane.yaml"
    cfg.write_text(f"server: {{host: 127.0.0.1, port: {free_port()}}}\n")
    down = runner.invoke(app, ["env", "list", "--config", str(cfg)], env={"COSTPLANE_KEY": "cpk_x"})
    assert down.exit_code == 1 and "cannot reach the costplane server at http://127.0.0.1:" in down.output
    assert "Traceback" not in down.output
