"""`GET /api/v1/blueprints` and `GET /api/v1/bundle`: what the active bundle declares.

Blueprints and policies are organisation-wide declarations every role may read (a developer
needs a blueprint's inputs to launch it). Budgets and SLOs are listed by `/bundle` only as far
as the caller may see them on `/budgets` and `/slos`, so the bundle summary reveals no more
than those endpoints do.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from starlette.concurrency import run_in_threadpool

from costplane.api.budgets import budget_states
from costplane.api.principal import Principal
from costplane.api.redact import bundle_relative
from costplane.api.slos import slo_visible
from costplane.api.table import Call
from costplane.app import Application
from costplane.core.environments import EnvironmentCore
from costplane.core.envpricing import estimate
from costplane.money import format_usd
from costplane.policy.blueprintschema import BlueprintSpec, InputError, InputSpec, resolve_inputs
from costplane.pricing.skus import UnknownSku

__all__ = ["BLUEPRINTS_SCHEMA", "BUNDLE_SCHEMA", "blueprint_view", "blueprints_handler", "bundle_handler"]

_NAMES = {"type": "array", "items": {"type": "string"}}
BLUEPRINTS_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["blueprints", "bundle_revision"],
    "properties": {"bundle_revision": {"type": "string"}, "blueprints": {"type": "array", "items": {
        "type": "object", "required": ["name", "inputs", "resources", "lifecycle", "require"], "properties": {
            "name": {"type": "string"}, "description": {"type": "string"}, "owner": {"type": "string"},
            "driver": {"type": ["string", "null"]}, "require": _NAMES, "budgets": _NAMES,
            "inputs": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "type": {"type": "string"}, "allowed": {"type": "array"},
                "default": {}, "minimum": {"type": ["string", "null"]}, "maximum": {"type": ["string", "null"]},
                "pattern": {"type": ["string", "null"]}, "required": {"type": "boolean"}}}},
            "resources": {"type": "array", "items": {"type": "object", "properties": {
                "kind": {"type": "string"}, "sku": {"type": ["string", "null"]}, "count": {"type": "string"}}}},
            "lifecycle": {"type": "object", "description": "durations in seconds", "properties": {
                "ttl": {"type": "integer"}, "max_ttl": {"type": "integer"}, "extend_by": {"type": "integer"},
                "max_extensions": {"type": ["integer", "null"]}, "notice": {"type": "integer"},
                "idle": {"type": ["object", "null"]}}},
            "estimated_hourly_usd": {"type": ["string", "null"], "description": "hourly cost of the defaults"},
            "estimate_error": {"type": ["string", "null"], "description": "why there is no estimate"}}}}},
}
BUNDLE_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["revision", "counts"],
    "properties": {"revision": {"type": "string"}, "digest": {"type": "string"},
                   "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                   "policies": _NAMES, "budgets": _NAMES, "blueprints": _NAMES, "slos": _NAMES},
}


def _plain(value: Any) -> Any:
    """JSON for a declared value: exact decimals as strings, never floats."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _input(spec: InputSpec) -> dict[str, Any]:
    return {"name": spec.name, "type": spec.type, "allowed": _plain(spec.allowed), "default": _plain(spec.default),
            "minimum": None if spec.minimum is None else str(spec.minimum),
            "maximum": None if spec.maximum is None else str(spec.maximum), "pattern": spec.pattern,
            "required": spec.required}


def blueprint_view(blueprint: BlueprintSpec, environments: EnvironmentCore, now: datetime) -> dict[str, Any]:
    life = blueprint.lifecycle
    idle = life.idle
    hourly: str | None = None
    error: str | None = None
    try:
        hourly = format_usd(estimate(blueprint, resolve_inputs(blueprint, {}), environments.skus, now).hourly_nano)
    except InputError as exc:  # a required input without a default: no estimate of "the defaults"
        error = bundle_relative(str(exc), (environments.bundle().engine.bundle.root,))
    except (UnknownSku, ValueError) as exc:
        error = bundle_relative(str(exc), (environments.bundle().engine.bundle.root,))
    return {
        "name": blueprint.name, "description": blueprint.description, "owner": blueprint.owner,
        "driver": blueprint.driver.get("type"), "require": list(blueprint.require), "budgets": list(blueprint.budgets),
        "inputs": [_input(i) for i in blueprint.inputs],
        "resources": [{"kind": r.kind, "sku": r.sku, "count": r.count} for r in blueprint.resources],
        "lifecycle": {"ttl": life.ttl, "max_ttl": life.max_ttl, "extend_by": life.extend_by,
                      "max_extensions": life.max_extensions, "notice": life.notice,
                      "idle": None if idle is None else {"metric": idle.metric, "below": str(idle.below),
                                                         "for": idle.for_seconds, "action": idle.action}},
        "estimated_hourly_usd": hourly, "estimate_error": error,
    }


def blueprints_handler(environments: EnvironmentCore) -> Any:
    async def handler(call: Call) -> dict[str, Any]:
        now = datetime.now(UTC)
        bundle = environments.bundle()
        views = await run_in_threadpool(lambda: [blueprint_view(b, environments, now) for b in
                                                 environments.blueprints()])
        return {"bundle_revision": bundle.revision, "blueprints": views}

    return handler


def _summary(application: Application, principal: Principal) -> dict[str, Any]:
    active = application.bundle
    declared = active.engine.bundle
    if principal.scope is None:
        budgets = [b.name for b in declared.budgets]
    else:
        visible = {row["name"] for row in budget_states(application, principal, datetime.now(UTC))}
        budgets = [b.name for b in declared.budgets if b.name in visible]
    slos = [s.name for s in declared.slos if slo_visible(principal, s)]
    names = {"policies": [p.name for p in declared.policies], "budgets": budgets,
             "blueprints": [b.name for b in declared.blueprints], "slos": slos}
    return {"revision": active.revision, "digest": declared.digest,
            "counts": {k: len(v) for k, v in names.items()}, **names}


def bundle_handler(application: Application) -> Any:
    async def handler(call: Call) -> dict[str, Any]:
        return await run_in_threadpool(_summary, application, call.principal)

    return handler
