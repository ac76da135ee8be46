"""`costplane policy validate|test|hooks|replay`: check a bundle, run its test cases, show each hook's
request schema, replay recorded decisions."""

from __future__ import annotations

import gc
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from costplane.policy.bundle import Bundle, load_bundle
from costplane.policy.hookschema import BUDGET_HOOKS, DECISION_INPUT_VERSION, HOOK_SCHEMAS, render_markdown, render_text
from costplane.policy.testing import TestResult, run_tests
from costplane.policy.types import BundleError, ValidationIssue

__all__ = ["app"]

app = typer.Typer(
    no_args_is_help=True,
    help="Policy-as-code: validate a bundle and run its PolicyTest cases.",
)


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


BundleDir = Annotated[Path, typer.Argument(help="The bundle directory (policies/, budgets/, tests/).")]
FormatOption = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]


def _issue_json(issue: ValidationIssue) -> dict[str, Any]:
    return {
        "file": issue.location.file,
        "line": issue.location.line,
        "field": issue.field,
        "message": issue.message,
    }


def _load(path: Path, fmt: OutputFormat) -> Bundle:
    """Load the bundle or print every issue and exit 1."""
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        message = f"bundle directory {path} {what}"
        if fmt is OutputFormat.json:
            typer.echo(json.dumps({"valid": False, "error": message, "issues": []}, indent=2))
        else:
            typer.echo(f"error: {message}", err=True)
        raise typer.Exit(1)
    try:
        return load_bundle(path)
    except BundleError as exc:
        if fmt is OutputFormat.json:
            typer.echo(json.dumps({"valid": False, "issues": [_issue_json(i) for i in exc.issues]}, indent=2))
        else:
            for issue in exc.issues:
                typer.echo(str(issue))
            count = len(exc.issues)
            typer.echo(f"{count} issue{'s' if count != 1 else ''} in bundle {path}", err=True)
        raise typer.Exit(1) from None


@app.command()
def validate(path: BundleDir, fmt: FormatOption = OutputFormat.text) -> None:
    """Validate a bundle: every issue as `file:line: field: message`, exit 1 if any."""
    bundle = _load(path, fmt)
    counts = bundle.counts()
    if fmt is OutputFormat.json:
        payload = {
            "valid": True,
            "path": str(path),
            "revision": bundle.revision,
            "files": list(bundle.files),
            "budgets": len(bundle.budgets),
            "hooks": counts,
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    typer.echo(f"bundle {path} is valid")
    typer.echo(f"revision: {bundle.revision}")
    typer.echo(f"files: {len(bundle.files)}")
    for hook, numbers in counts.items():
        typer.echo(f"{hook}: {numbers['policies']} policies, {numbers['tests']} tests")
    typer.echo(f"budgets (all hooks): {len(bundle.budgets)}")


def _result_json(result: TestResult) -> dict[str, Any]:
    decision = result.decision
    return {
        "name": result.name,
        "file": result.location.file,
        "line": result.location.line,
        "passed": result.passed,
        "failures": result.failures,
        "effect": decision.effect if decision else None,
        "model": decision.model if decision else None,
        "policies": list(decision.policy_names) if decision else [],
        "budgets": list(result.budgets),
    }


@app.command("test")
def test_command(path: BundleDir, fmt: FormatOption = OutputFormat.text) -> None:
    """Run the bundle's PolicyTest cases: PASS/FAIL per case, exit 1 on any failure."""
    bundle = _load(path, fmt)
    results = run_tests(bundle)
    passed = sum(1 for r in results if r.passed)
    failed = len(results) - passed
    if fmt is OutputFormat.json:
        payload = {
            "revision": bundle.revision,
            "passed": passed,
            "failed": failed,
            "results": [_result_json(r) for r in results],
        }
        typer.echo(json.dumps(payload, indent=2))
    else:
        for result in results:
            status = "PASS" if result.passed else "FAIL"
            typer.echo(f"{status} {result.location}: {result.name}")
            for failure in result.failures:
                typer.echo(f"    {failure}")
        if not results:
            typer.echo(f"no PolicyTest documents in {path}")
        typer.echo(f"{passed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


class SchemaFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


@app.command("hooks")
def hooks_command(
    hook: Annotated[str | None, typer.Argument(help="One hook (llm.request, environment.launch, …); all if omitted.")]
    = None,
    fmt: Annotated[SchemaFormat, typer.Option("--format", help="Output format.")] = SchemaFormat.text,
) -> None:
    """Each hook's request schema: the `request.<field>`s its policies and budget scopes may read,
    with CEL type, default and description, and the effects it accepts."""
    names = [s.hook for s in HOOK_SCHEMAS]
    if hook is not None and hook not in names:
        typer.echo(f"error: unknown hook {hook!r}; expected one of {', '.join(names)}", err=True)
        raise typer.Exit(2)
    if fmt is SchemaFormat.markdown:
        typer.echo(render_markdown(), nl=False)
    elif fmt is SchemaFormat.json:
        payload = {
            "decision_input_version": DECISION_INPUT_VERSION,
            "hooks": [
                {"hook": s.hook, "decides": s.decides, "effects": list(s.effects),
                 "budgets": s.hook in BUDGET_HOOKS,
                 "fields": [{"name": f.name, "cel_type": f.cel_type, "description": f.description,
                             "example": f.example, "optional": f.optional, "default": f.default}
                            for f in s.fields]}
                for s in HOOK_SCHEMAS if hook is None or s.hook == hook
            ],
        }
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        typer.echo(render_text(hook), nl=False)


@app.command("replay")
def replay_command(
    path: BundleDir,
    since: Annotated[str, typer.Option("--since", help="how far back to replay: 7d, 30d, 12h …")] = "30d",
    config: Annotated[Path | None, typer.Option("--config", "-c", envvar="COSTPLANE_CONFIG",
                                                help="costplane.yaml (its store, providers, prices)")] = None,
    fmt: FormatOption = OutputFormat.text,
    batch: Annotated[int, typer.Option("--batch", min=100, help="rows read from the store per page")] = 5000,
    changes: Annotated[int, typer.Option("--changes", min=0, help="biggest changes listed (json)")] = 50,
) -> None:
    """Re-decide the recorded llm.request decisions and environment launches under a candidate bundle;
    report what would change. Read-only: nothing is written (costplane.optimize.replay)."""
    from costplane.cli.optimizing import Sources, window
    from costplane.optimize.replay import render_text, replay_store
    from costplane.pricing.skus import SkuCatalog

    bundle = _load(path, fmt)
    start, end = window(since)
    sources = Sources(config)
    # a replay makes millions of short-lived records: keep the long-lived ones (price catalog, bundle)
    # out of the cyclic collector's scans (about a tenth of a replay's time otherwise)
    gc.collect()
    gc.freeze()
    try:
        report = replay_store(sources.store, start, end, bundle, sources.config, sources.catalog,
                              SkuCatalog.load(sources.config.pricing), batch=batch, keep_changes=max(changes, 10))
    finally:
        sources.close()
    if fmt is OutputFormat.json:
        typer.echo(json.dumps(report.to_json(changes=changes), indent=2))
    else:
        typer.echo(render_text(report))
