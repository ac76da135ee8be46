"""`costplane runs list|show` and `costplane outcomes report|slo` on a local store."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import costplane
from costplane.cli.main import app


def test_runs_and_outcomes_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    with costplane.Session(url) as session:
        for ticket, resolved in (("t-1", True), ("t-2", False)):
            with session.agent_run("support-bot", run=ticket, tier="production"):
                with costplane.step("lookup"), costplane.tool("crm", cost_usd="0.01"):
                    pass
                if resolved:
                    costplane.outcome("ticket_resolved")
    runner = CliRunner()
    shown = runner.invoke(app, ["runs", "show", "t-1", "--store", url], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "agent support-bot  $0.01" in shown.output and "step lookup" in shown.output
    assert "tool crm  $0.01" in shown.output
    listed = runner.invoke(app, ["runs", "list", "--store", url], terminal_width=200)
    assert listed.exit_code == 0 and "t-1" in listed.output and "t-2" in listed.output
    by = runner.invoke(app, ["runs", "list", "--by", "agent,kind", "--store", url], terminal_width=200)
    assert by.exit_code == 0 and "support-bot" in by.output and "0.02" in by.output
    report = runner.invoke(app, ["outcomes", "report", "ticket_resolved", "--store", url], terminal_width=200)
    assert report.exit_code == 0, report.output
    assert "0.02" in report.output and "0.01" in report.output  # cost 0.02 for 1 outcome; 0.01 wasted
    missing = runner.invoke(app, ["runs", "show", "nope", "--store", url])
    assert missing.exit_code == 1 and "no run 'nope'" in missing.output
    slo = runner.invoke(app, ["outcomes", "slo", "--store", url])
    assert slo.exit_code == 0
