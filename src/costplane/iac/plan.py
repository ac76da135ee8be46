"""Read `terraform show -json` output: the resource changes a plan would make.

Only planned creates and updates (incl. replacements) are returned; deletes, reads and
no-ops cost nothing new. Errors name the file and the JSON path of the bad field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PlanError", "PlannedResource", "load_plan", "parse_plan"]

_PRICED_ACTIONS = frozenset({"create", "update"})


class PlanError(ValueError):
    """The file is not `terraform show -json` output; the message names the file and field."""


@dataclass(frozen=True, slots=True)
class PlannedResource:
    address: str
    type: str
    name: str
    provider: str  # terraform provider name, e.g. registry.terraform.io/hashicorp/aws
    actions: tuple[str, ...]
    values: Mapping[str, Any]  # the planned `after` values
    unknown: frozenset[str] = field(default_factory=frozenset)  # top-level attributes known only after apply

    @property
    def action(self) -> str:
        return "replace" if set(self.actions) == {"create", "delete"} else self.actions[-1]


def _fail(source: str, path: str, message: str) -> PlanError:
    return PlanError(f"{source}: {path}: {message}")


def parse_plan(data: Any, source: str = "plan") -> list[PlannedResource]:
    """The planned creates/updates of a decoded plan document, in plan order."""
    if not isinstance(data, Mapping):
        raise _fail(source, "(top)", "expected a JSON object (the output of `terraform show -json PLANFILE`)")
    if "resource_changes" not in data:
        if "format_version" in data and "values" in data:
            raise _fail(source, "resource_changes", "this is a state, not a plan: run `terraform plan -out "
                                                   "plan.tfplan && terraform show -json plan.tfplan`")
        raise _fail(source, "resource_changes", "missing: not the output of `terraform show -json PLANFILE`")
    changes = data["resource_changes"]
    if not isinstance(changes, list):
        raise _fail(source, "resource_changes", "expected a list")
    out: list[PlannedResource] = []
    for index, item in enumerate(changes):
        where = f"resource_changes[{index}]"
        if not isinstance(item, Mapping):
            raise _fail(source, where, "expected an object")
        change = item.get("change")
        if not isinstance(change, Mapping):
            raise _fail(source, f"{where}.change", "missing or not an object")
        actions = change.get("actions")
        if not isinstance(actions, list) or not actions or not all(isinstance(a, str) for a in actions):
            raise _fail(source, f"{where}.change.actions", "expected a non-empty list of strings")
        if item.get("mode", "managed") != "managed" or not _PRICED_ACTIONS & set(actions):
            continue
        for key in ("address", "type"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise _fail(source, f"{where}.{key}", "missing or not a string")
        after = change.get("after") or {}
        if not isinstance(after, Mapping):
            raise _fail(source, f"{where}.change.after", "expected an object")
        unknown = change.get("after_unknown") or {}
        unknown_keys = frozenset(k for k, v in unknown.items() if v is True) if isinstance(unknown, Mapping) else (
            frozenset())
        out.append(PlannedResource(str(item["address"]), str(item["type"]), str(item.get("name") or ""),
                                   str(item.get("provider_name") or ""), tuple(actions), dict(after),
                                   unknown_keys))
    return out


def load_plan(path: Path) -> list[PlannedResource]:
    """Read and parse a plan file; PlanError (naming the file, and the line for bad JSON) on failure."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(f"{path}:{exc.lineno}: not JSON: {exc.msg} (column {exc.colno})") from exc
    return parse_plan(data, str(path))
