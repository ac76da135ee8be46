"""`costplane assess`: score the seven capabilities 1-5 from the ledger and the bundle."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import typer

from costplane.cli.common import CONFIG_OPTION, fail
from costplane.cli.optimizing import Sources
from costplane.optimize.assess import QUESTIONS, assess, observe, render_markdown
from costplane.optimize.detectors import run_detectors
from costplane.optimize.detectors.gpus import load_environments
from costplane.optimize.history import load_history, parse_since
from costplane.policy.bundle import Bundle, load_bundle
from costplane.policy.types import BundleError
from costplane.pricing.skus import SkuCatalog

__all__ = ["register"]


class AssessFormat(StrEnum):
    markdown = "markdown"
    json = "json"


def _bundle(path: Path | None) -> Bundle | None:
    if path is None:
        return None
    try:
        return load_bundle(path)
    except BundleError as exc:
        fail(f"the bundle {path} does not validate ({len(exc.issues)} issues; run costplane policy validate)")


def assess_command(
    since: str = typer.Option("30d", "--since", help="the window of spend to assess"),
    fmt: AssessFormat = typer.Option(AssessFormat.markdown, "--format", help="output format"),
    interactive: bool = typer.Option(False, "--interactive", help="answer the worksheet for what the ledger "
                                     "cannot show"),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Score real-time enforcement, attribution, policy-as-code, optimization, lifecycle, pipelines and
    visibility 1-5 from what costplane enforces and records, with the gaps and next steps."""
    try:
        seconds = parse_since(since)
    except ValueError as exc:
        fail(str(exc), 2)
    sources = Sources(config)
    try:
        until = datetime.now(UTC)
        start = until - timedelta(seconds=seconds)
        environments = load_environments(sources.store, start, until, SkuCatalog.load(sources.config.pricing))
        findings = run_detectors(load_history(sources.store, start, until), sources.inputs,
                                 environments=environments)
        observations = observe(sources.store, _bundle(sources.config.bundle), start,
                               open_findings_nano=sum(f.monthly_saving_nano for f in findings))
    finally:
        sources.close()
    answers: dict[str, bool] = {}
    if interactive:
        for question in QUESTIONS:
            answers[question.id] = typer.confirm(f"[{question.capability}] {question.text}", default=False,
                                                 err=True)
    result = assess(observations, answers)
    if fmt is AssessFormat.json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        typer.echo(render_markdown(result))


def register(app: typer.Typer) -> None:
    app.command("assess")(assess_command)
