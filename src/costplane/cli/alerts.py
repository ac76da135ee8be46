"""`costplane alerts test`: send a test alert to every configured webhook and show each HTTP status."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from costplane.cli.common import CONFIG_OPTION, console, fail, load

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Alert webhooks (Slack-compatible JSON).")


@app.command()
def test(config: Path | None = CONFIG_OPTION) -> None:
    """POST a test alert to every webhook of alerts.webhooks; exit 1 if any did not answer 2xx."""
    from costplane.alerts.payload import slack_payload
    from costplane.alerts.webhook import WebhookError, send_webhook
    from costplane.core.notify import Notification

    settings = load(config)
    hooks = settings.alerts.webhooks
    if not hooks:
        fail("no webhooks configured: add alerts: {webhooks: [{url: https://…}]} to costplane.yaml")
    now = datetime.now(UTC)
    payload = slack_payload(Notification("test", "costplane", "test alert from `costplane alerts test`", ""),
                            None, now)
    table = Table("webhook", "kinds", "result")
    ok = True
    for hook in hooks:
        try:
            status = send_webhook(hook.url, payload, float(hook.timeout))
            result = f"HTTP {status}"
            good = 200 <= status < 300
        except WebhookError as exc:
            result, good = f"unreachable: {exc}", False
        ok = ok and good
        table.add_row(hook.url, ", ".join(hook.kinds), f"[green]{result}[/green]" if good else f"[red]{result}[/red]")
    console.print(table)
    if not ok:
        raise typer.Exit(1)
