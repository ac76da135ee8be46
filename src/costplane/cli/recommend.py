"""`costplane recommend`: waste detectors' findings, largest monthly saving first, with their policies."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer

from costplane.cli.common import CONFIG_OPTION
from costplane.cli.optimizing import Sources
from costplane.money import format_usd
from costplane.optimize.detectors import DETECTORS, ENVIRONMENT_DETECTORS, run_detectors

__all__ = ["register"]


class RecommendFormat(StrEnum):
    text = "text"
    json = "json"


def recommend(
    since: str = typer.Option("30d", "--since", help="how far back to look: 7d, 30d, 12h …"),
    detector: list[str] = typer.Option(
        [], "--detector", help=f"only these detectors: {', '.join([*DETECTORS, *ENVIRONMENT_DETECTORS])}"),
    fmt: RecommendFormat = typer.Option(RecommendFormat.text, "--format", help="output format"),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Run the waste detectors over the ledger; list findings with evidence, saving and the policy YAML."""
    sources = Sources(config)
    try:
        try:
            findings = run_detectors(sources.history(since), sources.inputs, detector,
                                     environments=sources.environments(since))
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    finally:
        sources.close()
    if fmt is RecommendFormat.json:
        typer.echo(json.dumps({"since": since, "findings": [f.to_json() for f in findings]}, indent=2))
        return
    if not findings:
        typer.echo(f"no findings in the last {since}")
        return
    for i, finding in enumerate(findings, 1):
        scope = ", ".join(f"{k}={v}" for k, v in finding.scope.items())
        typer.echo(f"{i}. [{finding.detector}] {finding.title}")
        typer.echo(f"   scope: {scope}; est. saving {format_usd(finding.monthly_saving_nano)} USD/month")
        for key, value in finding.evidence.items():
            typer.echo(f"   {key}: {value}")
        typer.echo("   policy:")
        for line in finding.document.splitlines():
            typer.echo(f"     {line}")


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend)
