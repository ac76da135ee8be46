"""`kind: Blueprint` documents: governed environment templates, validated with file:line and field.

    kind: Blueprint
    name: gpu-finetune
    description: fine-tune a model on one cloud GPU box
    owner: ml-platform
    inputs:
      gpu_type: {type: string, allowed: [L4, A10G, A100-80GB], default: L4}
      gpus: {type: int, min: 1, max: 8, default: 1}
      dataset: {type: string, pattern: "^s3://", required: true}
    resources: [{kind: gpu, sku: "aws/gpu/{gpu_type}", count: "{gpus}"}]
    driver: {type: process, command: [python, train.py, "{dataset}"], grace: 10s}
    lifecycle: {ttl: 4h, max_ttl: 24h, extend_by: 2h, max_extensions: 3, notice: 10m,
                idle: {metric: gpu_util, below: 5, for: 30m, action: teardown}}
    require: [owner, cost_center, tier]
    budgets: [team-ml-monthly]

`{name}` in resources and driver is replaced by the input's value. Inputs given at launch
are checked by `resolve_inputs`, whose errors name the blueprint's file:line and the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from costplane.attribution.context import DIMENSIONS
from costplane.ledger.windows import WindowError, parse_duration
from costplane.policy.checks import DocChecker, check_name, describe
from costplane.policy.types import SourceLocation, ValidationIssue
from costplane.policy.yamlsource import YMap, YNode, YScalar, YSeq, to_plain

__all__ = [
    "BLUEPRINT_KEYS",
    "DRIVER_TYPES",
    "BlueprintSpec",
    "IdleRule",
    "InputError",
    "InputSpec",
    "LifecycleSpec",
    "ResourceSpec",
    "render",
    "resolve_inputs",
    "validate_blueprint",
]

BLUEPRINT_KEYS = ("kind", "name", "description", "owner", "inputs", "resources", "driver", "lifecycle",
                  "require", "budgets")
INPUT_KEYS = ("type", "allowed", "default", "min", "max", "pattern", "required", "description")
INPUT_TYPES = ("string", "int", "number", "bool")
RESOURCE_KEYS = ("kind", "sku", "count", "hourly_usd", "name")
RESOURCE_KINDS = ("gpu", "instance", "storage", "other")
LIFECYCLE_KEYS = ("ttl", "max_ttl", "extend_by", "max_extensions", "notice", "idle", "accrue_every")
IDLE_KEYS = ("metric", "below", "for", "action")
IDLE_ACTIONS = ("teardown", "suspend", "notify")
DRIVER_TYPES = ("process", "terraform", "kubernetes", "noop")
DRIVER_KEYS: dict[str, tuple[str, ...]] = {
    "process": ("type", "command", "env", "cwd", "grace"),
    "terraform": ("type", "module", "variables", "grace"),
    "kubernetes": ("type", "workload", "image", "command", "namespace", "gpu_resource", "env", "grace"),
    "noop": ("type",),
}
_NOWHERE = SourceLocation("<memory>", 0)
_REF = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class InputSpec:
    name: str
    type: str = "string"
    allowed: tuple[Any, ...] = ()
    default: Any = None
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    pattern: str | None = None
    required: bool = False
    line: int = 0


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    kind: str
    sku: str | None  # template, e.g. "aws/gpu/{gpu_type}"
    count: str  # template or a number, e.g. "{gpus}" or "1"
    hourly_usd: Decimal | None = None  # a declared price instead of a SKU (storage, licences)
    name: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class IdleRule:
    metric: str
    below: Decimal
    for_seconds: int
    action: str = "teardown"


@dataclass(frozen=True, slots=True)
class LifecycleSpec:
    ttl: int  # seconds
    max_ttl: int
    extend_by: int
    max_extensions: int | None = None
    notice: int = 600
    idle: IdleRule | None = None
    accrue_every: int = 60


@dataclass(frozen=True, slots=True)
class BlueprintSpec:
    name: str
    driver: Mapping[str, Any]
    lifecycle: LifecycleSpec
    inputs: tuple[InputSpec, ...] = ()
    resources: tuple[ResourceSpec, ...] = ()
    require: tuple[str, ...] = ()
    budgets: tuple[str, ...] = ()
    description: str = ""
    owner: str = ""
    location: SourceLocation = _NOWHERE

    def input(self, name: str) -> InputSpec | None:
        return next((i for i in self.inputs if i.name == name), None)


class InputError(ValueError):
    """Inputs given at launch that the blueprint does not accept; every issue, with file:line and field."""

    def __init__(self, issues: list[ValidationIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def render(template: str, inputs: Mapping[str, Any]) -> str:
    """Replace every `{name}` with the input's value."""
    return _REF.sub(lambda m: str(inputs.get(m.group(1), m.group(0))), template)


def _duration(chk: DocChecker, node: YNode | None, field_name: str) -> int | None:
    if node is None:
        return None
    text = node.text if isinstance(node, YScalar) and not isinstance(node.value, bool) else None
    if text is None:
        chk.issue(node.line, field_name, f"expected a duration such as 30m, 4h or 2d, got {describe(node)}")
        return None
    try:
        return parse_duration(text)
    except WindowError as exc:
        chk.issue(node.line, field_name, str(exc))
        return None


def _number(chk: DocChecker, node: YNode | None, field_name: str) -> Decimal | None:
    if node is None:
        return None
    return chk.decimal(node, field_name, minimum=Decimal("-1e18"), maximum=Decimal("1e18"), what="a number")


def _check_input(chk: DocChecker, name: str, node: YNode) -> InputSpec | None:
    path = f"inputs.{name}"
    spec = chk.mapping(node, path, what="a mapping {type, allowed, default, min, max, pattern, required}")
    if spec is None:
        return None
    before = len(chk.issues)
    chk.keys(spec, path, INPUT_KEYS)
    kind = chk.string(spec.get("type"), f"{path}.type", choices=INPUT_TYPES, noun="type") or "string"
    allowed_node = chk.sequence(spec.get("allowed"), f"{path}.allowed", what="a list of allowed values")
    allowed = tuple(to_plain(i) for i in allowed_node.items) if allowed_node is not None else ()
    pattern = chk.string(spec.get("pattern"), f"{path}.pattern", what="a regular expression")
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            chk.issue(spec.get("pattern").line, f"{path}.pattern", f"invalid regular expression: {exc}")  # type: ignore[union-attr]
    required = chk.boolean(spec.get("required"), f"{path}.required") or False
    minimum = _number(chk, spec.get("min"), f"{path}.min")
    maximum = _number(chk, spec.get("max"), f"{path}.max")
    if minimum is not None and maximum is not None and minimum > maximum:
        chk.issue(spec.line, f"{path}.min", f"min {minimum} is greater than max {maximum}")
    result = InputSpec(name, kind, allowed, None, minimum, maximum, pattern, required, spec.line)
    default_node = spec.get("default")
    default = None
    if default_node is not None:
        problem, default = _coerce(result, to_plain(default_node))
        if problem:
            chk.issue(default_node.line, f"{path}.default", problem)
    for index, value in enumerate(allowed):
        problem, _ = _coerce(InputSpec(name, kind), value)
        if problem:
            chk.issue(allowed_node.line if allowed_node else spec.line, f"{path}.allowed[{index}]", problem)
    if len(chk.issues) != before:
        return None
    return InputSpec(name, kind, allowed, default, minimum, maximum, pattern, required, spec.line)


def _coerce(spec: InputSpec, raw: Any) -> tuple[str | None, Any]:
    """(problem or None, the typed value). Strings from the command line are converted."""
    value: Any = raw
    if spec.type == "int":
        if isinstance(raw, str) and re.fullmatch(r"-?\d+", raw.strip()):
            value = int(raw.strip())
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected an integer, got {raw!r}", None
    elif spec.type == "number":
        try:
            value = Decimal(str(raw).strip()) if not isinstance(raw, bool) else None
        except ArithmeticError:
            value = None
        if value is None or not value.is_finite():
            return f"expected a number, got {raw!r}", None
    elif spec.type == "bool":
        lowered = str(raw).strip().lower()
        if isinstance(raw, bool):
            value = raw
        elif lowered in ("true", "yes", "1"):
            value = True
        elif lowered in ("false", "no", "0"):
            value = False
        else:
            return f"expected true or false, got {raw!r}", None
    else:
        if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
            return f"expected a string, got {raw!r}", None
        value = str(raw)
    if spec.allowed and value not in spec.allowed and str(value) not in [str(a) for a in spec.allowed]:
        return f"{value!r} is not allowed; expected one of {', '.join(str(a) for a in spec.allowed)}", None
    if spec.type in ("int", "number"):
        if spec.minimum is not None and Decimal(value) < spec.minimum:
            return f"expected at least {spec.minimum}, got {value}", None
        if spec.maximum is not None and Decimal(value) > spec.maximum:
            return f"expected at most {spec.maximum}, got {value}", None
    if spec.pattern is not None and spec.type == "string" and re.search(spec.pattern, value) is None:
        return f"{value!r} does not match the pattern {spec.pattern!r}", None
    return None, value


def resolve_inputs(blueprint: BlueprintSpec, given: Mapping[str, Any]) -> dict[str, Any]:
    """The launch's inputs, typed and defaulted; InputError naming file:line and `inputs.<name>`."""
    issues: list[ValidationIssue] = []
    where = blueprint.location
    out: dict[str, Any] = {}
    for name in given:
        if blueprint.input(name) is None:
            known = ", ".join(i.name for i in blueprint.inputs) or "none"
            issues.append(ValidationIssue(where, f"inputs.{name}",
                                          f"blueprint {blueprint.name!r} has no input {name!r} (inputs: {known})"))
    for spec in blueprint.inputs:
        at = SourceLocation(where.file, spec.line or where.line)
        if spec.name not in given:
            if spec.required or spec.default is None:
                issues.append(ValidationIssue(at, f"inputs.{spec.name}",
                                              f"input {spec.name!r} of blueprint {blueprint.name!r} is required"))
                continue
            out[spec.name] = spec.default
            continue
        problem, value = _coerce(spec, given[spec.name])
        if problem:
            issues.append(ValidationIssue(at, f"inputs.{spec.name}", problem))
        else:
            out[spec.name] = value
    if issues:
        raise InputError(issues)
    return out


def _check_templates(chk: DocChecker, node: YNode, path: str, names: set[str]) -> None:
    if isinstance(node, YMap):
        for key, entry in node.entries.items():
            _check_templates(chk, entry.node, f"{path}.{key}", names)
    elif isinstance(node, YSeq):
        for index, item in enumerate(node.items):
            _check_templates(chk, item, f"{path}[{index}]", names)
    elif isinstance(node.value, str):
        for ref in _REF.findall(node.value):
            if ref not in names:
                chk.issue(node.line, path, f"{{{ref}}} names no input of this blueprint"
                                           f" (inputs: {', '.join(sorted(names)) or 'none'})")


def _check_resources(chk: DocChecker, node: YNode | None) -> tuple[ResourceSpec, ...]:
    seq = chk.sequence(node, "resources", what="a list of resources such as [{kind: gpu, sku: aws/gpu/L4}]")
    out: list[ResourceSpec] = []
    for index, item in enumerate(seq.items if seq else ()):
        path = f"resources[{index}]"
        res = chk.mapping(item, path, what="a mapping {kind, sku, count}")
        if res is None:
            continue
        chk.keys(res, path, RESOURCE_KEYS, ("kind",))
        kind = chk.string(res.get("kind"), f"{path}.kind", choices=RESOURCE_KINDS, noun="resource kind")
        sku = chk.string(res.get("sku"), f"{path}.sku", what="a SKU such as aws/gpu/L4 or aws/g5.xlarge")
        hourly = None
        if res.get("hourly_usd") is not None:
            hourly = chk.decimal(res.get("hourly_usd"), f"{path}.hourly_usd", minimum=Decimal(0),
                                 maximum=Decimal(10**6), what="USD per hour, a number >= 0")
        if sku is None and res.get("hourly_usd") is None:
            chk.issue(res.line, f"{path}.sku", "a resource needs a sku (priced from the SKU table) or hourly_usd")
        count_node = res.get("count")
        count = "1"
        if isinstance(count_node, YScalar) and isinstance(count_node.value, int) and count_node.value >= 0:
            count = str(count_node.value)
        elif isinstance(count_node, YScalar) and isinstance(count_node.value, str) and _REF.fullmatch(
                count_node.value.strip()):
            count = count_node.value.strip()
        elif count_node is not None:
            chk.issue(count_node.line, f"{path}.count", f"expected an integer >= 0 or an input such as "
                                                      f"\"{{gpus}}\", got {describe(count_node)}")
        name = chk.string(res.get("name"), f"{path}.name") or ""
        if kind is not None:
            out.append(ResourceSpec(kind, sku, count, hourly, name, res.line))
    return tuple(out)


def _check_driver(chk: DocChecker, node: YNode | None) -> dict[str, Any] | None:
    drv = chk.mapping(node, "driver", what="a mapping {type: process|terraform|kubernetes|noop, ...}")
    if drv is None:
        return None
    kind = chk.string(drv.get("type"), "driver.type", choices=DRIVER_TYPES, noun="driver type")
    if drv.get("type") is None:
        chk.issue(drv.line, "driver.type", f"required key 'type' is missing; expected one of {', '.join(DRIVER_TYPES)}")
    if kind is None:
        return None
    chk.keys(drv, "driver", DRIVER_KEYS[kind])
    if kind in ("process", "kubernetes") and drv.get("command") is not None:
        chk.string_list(drv.get("command"), "driver.command", what="a command as a list of strings")
    elif kind == "process":
        chk.issue(drv.line, "driver.command", "the process driver needs a command, e.g. [python, train.py]")
    if kind == "terraform":
        chk.string(drv.get("module"), "driver.module", what="a directory of terraform files (relative to the bundle)")
        if drv.get("module") is None:
            chk.issue(drv.line, "driver.module", "the terraform driver needs module: a directory")
        chk.mapping(drv.get("variables"), "driver.variables", what="a mapping of variable to value")
    if kind == "kubernetes":
        chk.string(drv.get("image"), "driver.image", what="a container image")
        if drv.get("image") is None:
            chk.issue(drv.line, "driver.image", "the kubernetes driver needs image: a container image")
        chk.string(drv.get("workload"), "driver.workload", choices=("Job", "Deployment"), noun="workload")
    for key in ("env", "variables"):
        mapping = chk.mapping(drv.get(key), f"driver.{key}", what="a mapping of name to value")
        for name, entry in (mapping.entries.items() if mapping else ()):
            if not isinstance(entry.node, YScalar):
                chk.issue(entry.node.line, f"driver.{key}.{name}", f"expected a value, got {describe(entry.node)}")
    out = to_plain(drv)
    if drv.get("grace") is not None:
        out["grace"] = _duration(chk, drv.get("grace"), "driver.grace")
    return dict(out)


def _check_lifecycle(chk: DocChecker, node: YNode | None) -> LifecycleSpec | None:
    life = chk.mapping(node, "lifecycle", what="a mapping {ttl, max_ttl, extend_by, idle, ...}")
    if life is None:
        return None
    before = len(chk.issues)
    chk.keys(life, "lifecycle", LIFECYCLE_KEYS, ("ttl",))
    ttl = _duration(chk, life.get("ttl"), "lifecycle.ttl")
    max_ttl = _duration(chk, life.get("max_ttl"), "lifecycle.max_ttl") or ttl
    extend_by = _duration(chk, life.get("extend_by"), "lifecycle.extend_by") or ttl
    notice = _duration(chk, life.get("notice"), "lifecycle.notice")
    accrue = _duration(chk, life.get("accrue_every"), "lifecycle.accrue_every")
    max_ext = chk.integer(life.get("max_extensions"), "lifecycle.max_extensions", minimum=0,
                          what="an integer >= 0")
    if ttl is not None and max_ttl is not None and max_ttl < ttl:
        chk.issue(life.get("max_ttl").line, "lifecycle.max_ttl",  # type: ignore[union-attr]
                  f"max_ttl ({max_ttl}s) is shorter than ttl ({ttl}s)")
    if accrue is not None and not 1 <= accrue <= 60:
        chk.issue(life.get("accrue_every").line, "lifecycle.accrue_every",  # type: ignore[union-attr]
                  "expected 1s to 60s (cost accrues into the ledger at least every minute)")
    idle = None
    idle_node = chk.mapping(life.get("idle"), "lifecycle.idle", what="a mapping {metric, below, for, action}")
    if idle_node is not None:
        chk.keys(idle_node, "lifecycle.idle", IDLE_KEYS, ("metric", "below", "for"))
        metric = chk.string(idle_node.get("metric"), "lifecycle.idle.metric", what="a metric name such as gpu_util")
        below = chk.decimal(idle_node.get("below"), "lifecycle.idle.below", minimum=Decimal(0),
                            maximum=Decimal(10**9), what="a threshold >= 0") if idle_node.get("below") else None
        window = _duration(chk, idle_node.get("for"), "lifecycle.idle.for")
        action = chk.string(idle_node.get("action"), "lifecycle.idle.action", choices=IDLE_ACTIONS,
                            noun="idle action") or "teardown"
        if metric and below is not None and window:
            idle = IdleRule(metric, below, window, action)
    if len(chk.issues) != before or ttl is None or max_ttl is None or extend_by is None:
        return None
    return LifecycleSpec(ttl, max_ttl, extend_by, max_ext, notice if notice is not None else min(600, ttl // 10),
                         idle, accrue or 60)


def validate_blueprint(chk: DocChecker, doc: YMap) -> BlueprintSpec | None:
    before = len(chk.issues)
    chk.keys(doc, "", BLUEPRINT_KEYS, ("name", "driver", "lifecycle"))
    name = check_name(chk, doc)
    description = chk.string(doc.get("description"), "description", allow_empty=True) or ""
    owner = chk.string(doc.get("owner"), "owner", what="the owning team or person") or ""
    inputs: list[InputSpec] = []
    inputs_node = chk.mapping(doc.get("inputs"), "inputs", what="a mapping of input name to its spec")
    for key, entry in (inputs_node.entries.items() if inputs_node else ()):
        spec = _check_input(chk, key, entry.node)
        if spec is not None:
            inputs.append(spec)
    names = set(inputs_node.entries) if inputs_node else set()
    resources = _check_resources(chk, doc.get("resources"))
    driver = _check_driver(chk, doc.get("driver"))
    for key in ("resources", "driver"):
        node = doc.get(key)
        if node is not None:
            _check_templates(chk, node, key, names)
    lifecycle = _check_lifecycle(chk, doc.get("lifecycle"))
    require = chk.string_list(doc.get("require"), "require", what="a list of context dimensions or tags") or []
    for index, dim in enumerate(require):
        if dim not in DIMENSIONS and not re.fullmatch(r"[a-z][a-z0-9_.-]{0,62}", dim):
            chk.issue(doc.get("require").line, f"require[{index}]",  # type: ignore[union-attr]
                      f"{dim!r} is neither a context dimension ({', '.join(DIMENSIONS)}) nor a tag name")
    budgets = chk.string_list(doc.get("budgets"), "budgets", what="a list of budget names") or []
    if len(chk.issues) != before or name is None or driver is None or lifecycle is None:
        return None
    return BlueprintSpec(name, driver, lifecycle, tuple(inputs), resources, tuple(require), tuple(budgets),
                         description, owner, chk.location(doc.line))



