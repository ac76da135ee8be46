"""What every command shares: finding and loading costplane.yaml, and failing cleanly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

from costplane.config import Config, ConfigError, load_config, parse_config

__all__ = ["CONFIG_OPTION", "console", "fail", "load"]

console = Console()
err_console = Console(stderr=True)

CONFIG_OPTION = typer.Option(
    None, "--config", "-c", help="costplane.yaml (default: ./costplane.yaml, or $COSTPLANE_CONFIG)",
    envvar="COSTPLANE_CONFIG",
)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load(path: Path | None) -> Config:
    """The configuration at `path`, ./costplane.yaml, or the built-in defaults; the settings'
    environment variables (docs/configuration.md) override the file."""
    if path is None and Path("costplane.yaml").is_file():
        path = Path("costplane.yaml")
    try:
        if path is None:
            return parse_config({}, env=os.environ)
        return load_config(path, env=os.environ)
    except ConfigError as exc:
        fail(str(exc), 2)
