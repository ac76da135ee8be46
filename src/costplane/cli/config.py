"""`costplane config show`: the effective value of every setting and where it came from.

The settings are those of `costplane.settings.SETTINGS`; the values are read from the parsed
`Config` (so they are what the server would use: durations, resolved store paths), and each is
attributed to `default`, `file` (with its line) or `env` (the variable that set it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.table import Table

from costplane.cli.common import CONFIG_OPTION, console, fail
from costplane.config import Config, ConfigError, env_overrides, parse_config, read_yaml
from costplane.settings import SETTINGS, Setting, shown

__all__ = ["Effective", "app", "effective_settings"]

app = typer.Typer(no_args_is_help=True, help="The configuration: show every setting's effective value and source.")

FORMATS = ("table", "yaml", "json")


@dataclass(frozen=True, slots=True)
class Effective:
    setting: Setting
    value: Any  # as it would be written in the file (None = unset)
    source: str  # default | file | env
    where: str  # "costplane.yaml:12", "$COSTPLANE_PORT" or ""
    line: int | None = None  # of the key in the file

    @property
    def short(self) -> str:
        """`default`, `file:12` or `env $COSTPLANE_PORT`."""
        if self.source == "file":
            return f"file:{self.line}" if self.line else "file"
        return f"env {self.where}" if self.source == "env" else self.source


def _raw(data: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _attr(config: Config, dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _plain(setting: Setting, value: Any) -> Any:
    """A value fit for YAML/JSON output: durations as written, Paths and Decimals as text."""
    if value is None:
        return None
    if setting.secret:
        return "(set)"
    if setting.type in ("duration", "decimal", "path", "text", "url", "origin", "zone", "envvar"):
        return shown(setting, value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def effective_settings(config: Config, data: Mapping[str, Any], lines: Mapping[str, int], source: str,
                       env: Mapping[str, str]) -> list[Effective]:
    """Every declared setting: its effective value and where it came from."""
    overrides = env_overrides(env)
    out: list[Effective] = []
    for setting in SETTINGS:
        present, raw = _raw(data, setting.path)
        value = _attr(config, setting.attr) if setting.attr else (raw if present else setting.default)
        line = lines.get(setting.path) if present else None
        if setting.path in overrides:
            origin, where = "env", f"${setting.env}"
        elif present:
            origin, where = "file", f"{source}:{line}" if line else source
        else:
            origin, where = "default", ""
        out.append(Effective(setting, _plain(setting, value), origin, where, line))
    return out


def _nested(rows: list[Effective]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in rows:
        if row.value is None:
            continue
        *parents, key = row.setting.path.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[key] = row.value
    return out


@app.command()
def show(
    config: Path | None = CONFIG_OPTION,
    output: str = typer.Option("table", "--format", "-f", help="table | yaml | json"),
) -> None:
    """Every setting: its effective value and its source (default, file:line or env)."""
    if output not in FORMATS:
        fail(f"--format: expected one of {', '.join(FORMATS)}, got {output!r}", 2)
    if config is None and Path("costplane.yaml").is_file():
        config = Path("costplane.yaml")
    env = dict(os.environ)
    try:
        data, lines = read_yaml(config) if config is not None else ({}, {})
        source = str(config) if config is not None else "(no file)"
        if config is not None:
            parsed = parse_config(data, source=source, lines=lines, base=config.parent, path=config, env=env)
        else:
            parsed = parse_config({}, env=env)
    except ConfigError as exc:
        fail(str(exc), 2)
    rows = effective_settings(parsed, data if isinstance(data, Mapping) else {}, lines, source, env)
    if output == "json":
        typer.echo(json.dumps({"config": str(config) if config else None, "settings": [
            {"setting": r.setting.path, "value": r.value, "default": _plain(r.setting, r.setting.default),
             "source": r.source, "where": r.where or None} for r in rows]}, indent=2, default=str))
    elif output == "yaml":
        typer.echo(f"# effective configuration of {source}; sources: costplane config show", nl=True)
        typer.echo(yaml.safe_dump(_nested(rows), sort_keys=False, allow_unicode=True), nl=False)
    else:
        table = Table(title=f"costplane configuration ({source})")
        table.add_column("setting", no_wrap=True)
        table.add_column("value", overflow="fold")
        table.add_column("source", no_wrap=True)
        for row in rows:
            table.add_row(row.setting.path, shown(row.setting, row.value), row.short)
        console.print(table)
