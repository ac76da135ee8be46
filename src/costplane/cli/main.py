"""The `costplane` command. Each sub-command group lives in its own module."""

from __future__ import annotations

import typer

from costplane.cli import (
    alerts,
    assess,
    config,
    demo,
    env,
    export,
    forecast,
    iac,
    keys,
    outcomes,
    policy,
    prices,
    recommend,
    reconcile,
    rollups,
    runs,
    serve,
    simulate,
    skus,
    users,
)

__all__ = ["app", "main"]

app = typer.Typer(
    name="costplane",
    help="AI FinOps control plane: a governed LLM gateway with budgets, policy-as-code and attribution.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(prices.app, name="prices")
app.add_typer(policy.app, name="policy")
app.add_typer(keys.app, name="keys")
app.add_typer(runs.app, name="runs")
app.add_typer(outcomes.app, name="outcomes")
app.add_typer(env.app, name="env")
app.add_typer(iac.app, name="iac")
app.add_typer(skus.app, name="skus")  # costplane skus show / refresh (cli/skus.py)
app.add_typer(alerts.app, name="alerts")
app.add_typer(export.app, name="export")
app.add_typer(users.app, name="users")  # API users and tokens (cli/users.py)
serve.register(app)
demo.register(app)
simulate.register(app)
assess.register(app)  # costplane assess (cli/assess.py)
recommend.register(app)  # costplane recommend (cli/recommend.py)
forecast.register(app)  # costplane forecast, anomalies (cli/forecast.py)
app.add_typer(rollups.app, name="rollups")  # costplane rollups rebuild (cli/rollups.py)
reconcile.register(app)  # costplane reconcile: metered vs billed (cli/reconcile.py)
app.add_typer(config.app, name="config")  # costplane config show (cli/config.py)


def main() -> None:
    app()
