"""Read `terraform show -json` output: the resource changes a plan would make.

Only planned creates and updates (incl. replacements) are returned; deletes, reads and
no-ops cost nothing new. A plan with no `resource_changes` but `planned_values` (as some
tools write it) is read as creating every planned resource. Output of the terraform CLI
wrapper (a `[command]…` line before the JSON) and a plan nested under a single key
(``{"tfplan": {...}}``) are accepted. Each resource carries its provider's region and the
resources its configuration references (iac/refs.py). Errors name the file and the JSON
path of the bad field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from costplane.iac.refs import PlanConfig, read_config

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
    region: str = ""  # the region of the resource's provider configuration ("" when the plan does not say)
    references: frozenset[str] = field(default_factory=frozenset)  # configuration addresses it references

    @property
    def action(self) -> str:
        return "replace" if set(self.actions) == {"create", "delete"} else self.actions[-1]


def _fail(source: str, path: str, message: str) -> PlanError:
    return PlanError(f"{source}: {path}: {message}")


def parse_plan(data: Any, source: str = "plan") -> list[PlannedResource]:
    """The planned creates/updates of a decoded plan document, in plan order."""
    if not isinstance(data, Mapping):
        raise _fail(source, "(top)", "expected a JSON object (the output of `terraform show -json PLANFILE`)")
    if "resource_changes" not in data and "planned_values" not in data and len(data) == 1:
        inner = next(iter(data.values()))
        if isinstance(inner, Mapping) and ("resource_changes" in inner or "planned_values" in inner):
            data = inner  # a plan nested under one key, e.g. {"tfplan": {...}}
    config = read_config(data)
    if "resource_changes" not in data and isinstance(data.get("planned_values"), Mapping):
        return _planned_values(data["planned_values"], source, config)
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
        address = str(item["address"])
        out.append(PlannedResource(address, str(item["type"]), str(item.get("name") or ""),
                                   str(item.get("provider_name") or ""), tuple(actions), dict(after),
                                   unknown_keys, config.region_of(address, str(item["type"])),
                                   config.references_of(address)))
    return out


def _planned_values(planned: Mapping[str, Any], source: str, config: PlanConfig) -> list[PlannedResource]:
    out: list[PlannedResource] = []

    def visit(module: Any, where: str) -> None:
        if not isinstance(module, Mapping):
            return
        for index, item in enumerate(module.get("resources") or []):
            path = f"{where}.resources[{index}]"
            if not isinstance(item, Mapping):
                raise _fail(source, path, "expected an object")
            address = item.get("address")
            if not isinstance(address, str) or not address:
                raise _fail(source, f"{path}.address", "missing or not a string")
            if item.get("mode", "managed") != "managed":
                continue
            values = item.get("values") or {}
            if not isinstance(values, Mapping):
                raise _fail(source, f"{path}.values", "expected an object")
            type_ = item.get("type")
            if not isinstance(type_, str) or not type_:  # some tools leave type out: it is in the address
                type_ = address.split(".")[-2] if "." in address else ""
            out.append(PlannedResource(address, type_.split("[")[0], str(item.get("name") or ""),
                                       str(item.get("provider_name") or ""), ("create",), dict(values),
                                       frozenset(), config.region_of(address, type_), config.references_of(address)))
        for index, child in enumerate(module.get("child_modules") or []):
            visit(child, f"{where}.child_modules[{index}]")

    visit(planned.get("root_module"), "planned_values.root_module")
    return out


def load_plan(path: Path) -> list[PlannedResource]:
    """Read and parse a plan file; PlanError (naming the file, and the line for bad JSON) on failure."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    offset = 0
    if text.lstrip().startswith("[command]"):  # the terraform CLI wrapper (setup-terraform) prints its command first
        offset = text.count("\n", 0, text.find("\n{") + 1)
        text = text[text.find("\n{") + 1:]
    try:
        data = json.JSONDecoder().raw_decode(text)[0] if offset else json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(f"{path}:{exc.lineno + offset}: not JSON: {exc.msg} (column {exc.colno})") from exc
    return parse_plan(data, str(path))
