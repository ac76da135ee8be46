"""The OpenAPI 3.1 document, generated from the route table (never written by hand)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from costplane.api.principal import KEY_ROLES
from costplane.api.table import Endpoint

__all__ = ["ERROR_SCHEMA", "openapi_document"]

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message", "field"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": ["string", "null"]},
        "decision_id": {"type": ["string", "null"], "description": "the logged decision of a refusal"},
        "bundle_revision": {"type": "string"}, "policies": {"type": "array", "items": {"type": "string"}},
        "reason": {"type": "string"}}}},
}
_ERRORS = {"400": "invalid parameter or body (`field` names it)",
           "401": "missing, unknown, revoked or expired token or key, or disabled user",
           "403": "the caller's role or team scope does not allow this", "404": "no such resource",
           "409": "the resource is not in a state that allows this"}


_WRITE_ERRORS = {"402": "refused by a budget (the error names it, with decision id and bundle revision)",
                 "413": "the body is too large", "429": "refused by a rate or call limit",
                 "502": "an environment driver failed", "503": "the store or a dependency is unavailable"}


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    roles = ", ".join(endpoint.roles) if endpoint.roles else "public (no token)"
    op: dict[str, Any] = {
        "operationId": endpoint.operation_id, "summary": endpoint.summary,
        "description": f"{endpoint.description}\n\nRoles allowed: {roles}.".strip(),
        "x-costplane-roles": list(endpoint.roles),
        "x-costplane-scoping": endpoint.scoping.rule if endpoint.scoping else None,
        "parameters": [{"name": p.name, "in": p.location, "required": p.required or p.location == "path",
                        "description": p.description, "schema": p.schema()} for p in endpoint.params],
        "responses": {str(endpoint.status): {"description": "success", "content": {
            "application/json": {"schema": endpoint.response}}}},
    }
    if endpoint.tags:
        op["tags"] = list(endpoint.tags)
    errors = dict(_ERRORS)
    if endpoint.method != "GET":
        errors.update(_WRITE_ERRORS)
    if endpoint.raw_body:
        errors["415"] = "unsupported content-type"
    for status, text in errors.items():
        op["responses"][status] = {"description": text,
                                   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    if not endpoint.roles:
        op["security"] = []
    elif set(endpoint.roles) <= set(KEY_ROLES):  # the machine API: a costplane key, bearer or x-api-key
        op["security"] = [{"bearer": []}, {"apiKey": []}]
    else:
        op["security"] = [{"bearer": []}]
    if endpoint.scoping is not None and endpoint.scoping.note:
        op["description"] += f"\n\nScoping ({endpoint.scoping.rule}): {endpoint.scoping.note}."
    if endpoint.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": endpoint.body}}}
    return op


def openapi_document(endpoints: Sequence[Endpoint], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {"title": "costplane API", "version": version,
                 "description": "Spend, budgets, decisions, keys, blueprints, environments, runs, outcomes and "
                                "SLOs of a costplane server, scoped by role (/api/v1), and the machine API "
                                "(/v1: environments, runs, outcomes, SLOs, OTLP traces) for costplane keys. "
                                "Authenticate /api/v1 with `Authorization: Bearer <API token>` (`costplane users "
                                "token`) and /v1 with a costplane key (`Authorization: Bearer cpk_…` or "
                                "`x-api-key`). Every operation states its roles and scoping rule."},
        "paths": paths,
        "components": {"schemas": {"Error": ERROR_SCHEMA},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                           "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}}},
    }
