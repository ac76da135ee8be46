"""The OpenAPI 3.1 document, generated from the route table (never written by hand)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
_ERRORS = {"400": "invalid parameter or body (`field` names it)", "401": "missing, unknown, revoked or expired token",
           "403": "the caller's role or team scope does not allow this", "404": "no such resource",
           "409": "the resource is not in a state that allows this"}


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    roles = ", ".join(endpoint.roles) if endpoint.roles else "public (no token)"
    op: dict[str, Any] = {
        "operationId": endpoint.operation_id, "summary": endpoint.summary,
        "description": f"{endpoint.description}\n\nRoles allowed: {roles}.".strip(),
        "x-costplane-roles": list(endpoint.roles),
        "parameters": [{"name": p.name, "in": p.location, "required": p.required or p.location == "path",
                        "description": p.description, "schema": p.schema()} for p in endpoint.params],
        "responses": {str(endpoint.status): {"description": "success", "content": {
            "application/json": {"schema": endpoint.response}}}},
    }
    if endpoint.tags:
        op["tags"] = list(endpoint.tags)
    for status, text in _ERRORS.items():
        op["responses"][status] = {"description": text,
                                   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    if endpoint.roles:
        op["security"] = [{"bearer": []}]
    else:
        op["security"] = []
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
                                "SLOs of a costplane server, scoped by role. "
                                "Authenticate with `Authorization: Bearer <API token>` (`costplane users token`)."},
        "paths": paths,
        "components": {"schemas": {"Error": ERROR_SCHEMA},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
