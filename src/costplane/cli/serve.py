"""`costplane serve`: run the governed gateway."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from costplane.cli.common import CONFIG_OPTION, fail, load

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        config: Path | None = CONFIG_OPTION,
        host: str | None = typer.Option(None, help="bind address (default: server.host, 127.0.0.1)"),
        port: int | None = typer.Option(None, help="port (default: server.port, 8080)"),
        log_level: str = typer.Option("info", help="debug | info | warning | error"),
    ) -> None:
        """Run the gateway: OpenAI- and Anthropic-compatible, every call governed."""
        import uvicorn

        from costplane.app import Application
        from costplane.ledger.store import StoreError
        from costplane.policy.types import BundleError
        from costplane.server import create_server

        settings = load(config)
        logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            application = Application(settings)
        except BundleError as exc:
            fail(f"the bundle does not load:\n{exc}", 2)
        except StoreError as exc:
            fail(f"the store cannot be opened: {exc}", 2)
        gateway = create_server(application)
        bind_host = host or settings.host
        bind_port = port or settings.port
        typer.echo(f"costplane gateway on http://{bind_host}:{bind_port}  bundle {application.bundle.revision}  "
                   f"store {settings.store_url.split('@')[-1]}")
        uvicorn.run(gateway, host=bind_host, port=bind_port, log_level=log_level, access_log=False,
                    loop="auto", http="auto")
