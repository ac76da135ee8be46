"""The `costplane` command. Each sub-command group lives in its own module."""

from __future__ import annotations

import typer

from costplane.cli import demo, keys, policy, prices, serve, simulate

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
serve.register(app)
demo.register(app)
simulate.register(app)


def main() -> None:
    app()
