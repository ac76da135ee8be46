"""`costplane iac check plan.json`: the IaC plan cost gate (exit 1 on deny, for CI).

Offline by default: iac.plan policies, and the bundle's budgets against the plan alone (an empty
in-memory ledger). `--against-store` decides against the configured store's budget counters
(what they have spent and hold; a dry run: nothing is reserved, each decision is logged)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer
from rich.table import Table

from costplane.cli.common import CONFIG_OPTION, console, fail, load
from costplane.iac import PlanError, PlanReport, PricedResource, check_plan, load_plan
from costplane.money import format_usd
from costplane.policy.bundle import load_bundle
from costplane.policy.engine import PolicyEngine
from costplane.policy.types import BundleError
from costplane.pricing.skus import SkuCatalog

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Infrastructure-as-code cost gate: price a terraform plan, "
                                              "evaluate iac.plan policies.")


class Format(StrEnum):
    text = "text"
    json = "json"


def _engine(bundle: Path | None) -> PolicyEngine | None:
    if bundle is None:
        return None
    if not bundle.is_dir():
        fail(f"--bundle: {bundle} is not a directory", 2)
    try:
        return PolicyEngine(load_bundle(bundle))
    except BundleError as exc:
        fail("the bundle is invalid:\n" + "\n".join(str(i) for i in exc.issues), 2)


def _nodes(p: PricedResource) -> str:
    if (p.min_nodes, p.max_nodes) == (p.node_count, p.node_count):
        return str(p.node_count)
    return f"{p.min_nodes}/{p.node_count}/{p.max_nodes}"


def _print(report: PlanReport) -> None:
    table = Table("resource", "action", "type", "region", "nodes min/desired/max", "gpu", "hourly USD",
                  "monthly USD", "decision")
    for verdict in report.verdicts:
        p = verdict.priced
        gpu = f"{p.gpu_count}× {p.gpu_type}" if p.gpu_count else "-"
        money = ("?", "?") if p.unknown else (format_usd(p.hourly_nano, places=4), format_usd(p.monthly_nano,
                                                                                                places=2))
        if p.estimated and not p.unknown:
            money = (money[0] + " (est.)", money[1] + " (est.)")
        style = {"deny": "red", "notify": "yellow"}.get(verdict.effect, "green")
        decision = f"[{style}]{verdict.effect}[/{style}]"
        if verdict.policies:
            decision += " " + ", ".join(verdict.policies)
        kind = (p.instance_type or "?") + (" (spot)" if p.spot else "")
        table.add_row(p.resource.address, p.resource.action, kind, p.region or "?", _nodes(p), gpu, *money, decision)
    console.print(table)
    console.print(f"total monthly (priced resources, desired nodes, 730 h): [bold]"
                  f"{format_usd(report.total_monthly_nano, places=2)}[/bold] USD; at max nodes: "
                  f"{format_usd(report.max_monthly_nano, places=2)} USD")
    for verdict in report.unpriced:
        console.print(f"unpriced: {verdict.priced.resource.address} ({verdict.priced.unknown})", highlight=False,
                      soft_wrap=True)
    for verdict in report.verdicts:
        for note in verdict.priced.notes:
            console.print(f"note: {verdict.priced.resource.address}: {note}", highlight=False, soft_wrap=True)
        for reason in verdict.reasons:
            if verdict.priced.unknown is not None:
                continue
            label = "denied" if verdict.denied else "note"
            console.print(f"{label}: {verdict.priced.resource.address}: {reason}", highlight=False, soft_wrap=True)
    for template, users in report.templates.items():
        console.print(f"template {template}: priced through {', '.join(users)}", highlight=False, soft_wrap=True)
    if report.skipped:
        console.print(f"not priced (no VM or node capacity): {', '.join(report.skipped)}", highlight=False,
                      soft_wrap=True)
    if report.bundle_revision is None:
        console.print("no bundle: prices only, no iac.plan policies evaluated (pass --bundle or set bundle in "
                      "costplane.yaml)")
    if report.budgets_exceeded:
        console.print(f"[red]the plan would exceed hard budget(s): {', '.join(report.budgets_exceeded)}[/red]",
                      highlight=False, soft_wrap=True)
    if report.unpriced:
        console.print(f"[red]{len(report.unpriced)} resource(s) create compute without a known price: denied "
                      "(unknown_price)[/red]")
    console.print("[red]plan denied[/red]" if report.denied else "[green]plan allowed[/green]")


@app.command()
def check(
    plan: Path = typer.Argument(..., help="`terraform show -json PLANFILE` output"),
    fmt: Format = typer.Option(Format.text, "--format", help="text (tables) or json"),
    bundle: Path | None = typer.Option(None, "--bundle", help="bundle directory (default: bundle in costplane.yaml)"),
    context: list[str] = typer.Option([], "--context", help="context for every resource, name=value (repeatable), "
                                                           "e.g. --context tier=experiment; overrides tags"),
    region: list[str] = typer.Option([], "--region", help="provider=region for resources whose region the plan "
                                                         "does not say (repeatable), e.g. --region aws=eu-west-1"),
    against_store: bool = typer.Option(False, "--against-store",
                                       help="check the plan against the configured store's budget counters "
                                            "(dry run; decisions logged) instead of the plan alone"),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Price the compute the plan creates (instances, VMs, auto-scaling and instance groups, node pools, scale
    sets), evaluate iac.plan policies and check the budgets (a dry run: nothing reserved). Exit 0: allowed;
    1: denied (by a policy, a hard budget, or compute without a known price); 2: bad input."""
    settings = load(config)
    given: dict[str, str] = {}
    for item in context:
        if "=" not in item:
            fail(f"--context: expected name=value, got {item!r}", 2)
        name, value = item.split("=", 1)
        given[name.strip()] = value.strip()
    regions: dict[str, str] = {}
    for item in region:
        name, _, value = item.partition("=")
        if name.strip().lower() not in ("aws", "gcp", "azure") or not value.strip():
            fail(f"--region: expected aws=REGION, gcp=REGION or azure=REGION, got {item!r}", 2)
        regions[name.strip().lower()] = value.strip()
    try:
        resources = load_plan(plan)
    except PlanError as exc:
        fail(str(exc), 2)
    engine = _engine(bundle or settings.bundle)
    application = None
    if against_store:
        from costplane.app import Application

        if bundle is not None:
            fail("--against-store decides under the configured bundle; drop --bundle", 2)
        application = Application(settings)
    try:
        report = check_plan(resources, SkuCatalog.load(settings.pricing), engine, given, default_regions=regions,
                            decider=application.core.decider if application is not None else None)
    except ValueError as exc:  # an invalid --context value
        fail(str(exc), 2)
    finally:
        if application is not None:
            application.close()
    if fmt is Format.json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        _print(report)
    raise typer.Exit(1 if report.denied else 0)
