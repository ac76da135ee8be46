"""`costplane serve`: run the governed gateway, in one process or as `--workers N` processes.

With `--workers N` (N > 1) the configuration, bundle and store are checked (and the store migrated)
once, then N worker processes serve one socket (`serving.run_workers`), each with its own
application, store connections and — with `ledger.leases: on` — its own leases and journal. The
workers share the budgets through the ledger (SQLite file or PostgreSQL), exactly as N replicas.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import typer

from costplane.cli.common import CONFIG_OPTION, fail, load
from costplane.config import Config

__all__ = ["MAX_WORKERS", "build_gateway", "register"]

MAX_WORKERS = 64


def build_gateway(settings: Config, log_level: str = "info") -> Any:
    """The gateway application of one worker process (module-level: the workers are spawned)."""
    from costplane.app import Application
    from costplane.server import create_server

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_server(Application(settings))


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        config: Path | None = CONFIG_OPTION,
        host: str | None = typer.Option(None, help="bind address (default: server.host, 127.0.0.1)"),
        port: int | None = typer.Option(None, help="port (default: server.port, 8080)"),
        log_level: str = typer.Option("info", help="debug | info | warning | error"),
        workers: int = typer.Option(1, help=f"worker processes sharing the port and the budgets (1–{MAX_WORKERS})"),
    ) -> None:
        """Run the gateway: OpenAI- and Anthropic-compatible, every call governed."""
        import uvicorn

        from costplane.app import Application
        from costplane.ledger.store import StoreError
        from costplane.policy.types import BundleError
        from costplane.server import create_server
        from costplane.serving import WorkerPoolError, freeze_heap, run_workers

        if not 1 <= workers <= MAX_WORKERS:
            fail(f"--workers: expected 1 to {MAX_WORKERS}, got {workers}", 2)
        settings = load(config)
        logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            application = Application(settings)
        except BundleError as exc:
            fail(f"the bundle does not load:\n{exc}", 2)
        except StoreError as exc:
            fail(f"the store cannot be opened: {exc}", 2)
        bind_host = host or settings.host
        bind_port = port or settings.port
        shown = f"  {workers} workers" if workers > 1 else ""
        typer.echo(f"costplane gateway on http://{bind_host}:{bind_port}  bundle {application.bundle.revision}  "
                   f"store {settings.store_url.split('@')[-1]}{shown}")
        if workers > 1:
            application.close()  # checked and migrated; every worker opens its own
            try:
                run_workers(functools.partial(build_gateway, settings, log_level), bind_host, bind_port, workers,
                            log_level=log_level)
            except WorkerPoolError as exc:
                fail(f"{exc} (see its log above)", 1)
            return
        gateway = create_server(application)
        freeze_heap()
        uvicorn.run(gateway, host=bind_host, port=bind_port, log_level=log_level, access_log=False,
                    loop="auto", http="auto")
