"""`/api/v1/keys` (admin only): list virtual keys (never their secrets), create one (the secret
is returned once), revoke one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from costplane.api.errors import ApiError
from costplane.api.table import Call
from costplane.attribution.context import InvalidAttribute
from costplane.gateway.keys import create_key
from costplane.ledger.store import Store
from costplane.ledger.types import KeyRecord

__all__ = ["KEYS_SCHEMA", "KEY_BODY", "KEY_SCHEMA", "create_handler", "list_handler", "revoke_handler"]

KEY_SCHEMA: dict[str, Any] = {"type": "object", "required": ["id", "name", "prefix"], "properties": {
    "id": {"type": "string"}, "name": {"type": "string"}, "prefix": {"type": "string"},
    "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
    "created_at": {"type": "string", "format": "date-time"},
    "expires_at": {"type": ["string", "null"], "format": "date-time"},
    "revoked_at": {"type": ["string", "null"], "format": "date-time"},
    "secret": {"type": "string", "description": "only in the response to create, shown once"}}}
KEYS_SCHEMA: dict[str, Any] = {"type": "object", "required": ["keys"],
                               "properties": {"keys": {"type": "array", "items": KEY_SCHEMA}}}
KEY_BODY: dict[str, Any] = {"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string"}, "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
    "expires_at": {"type": "string", "format": "date-time"}}}


def _view(key: KeyRecord) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "prefix": key.prefix, "attributes": dict(key.attributes),
            "created_at": key.created_at.isoformat(),
            "expires_at": key.expires_at.isoformat() if key.expires_at else None,
            "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None}


def list_handler(store: Store) -> Any:
    async def handler(call: Call) -> dict[str, Any]:
        return {"keys": [_view(k) for k in await run_in_threadpool(store.list_keys)]}

    return handler


def create_handler(store: Store) -> Any:
    async def handler(call: Call) -> dict[str, Any]:
        body = call.body
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_body", "the body must be a JSON object", "(body)")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "invalid_field", "name: a non-empty string is required", "name")
        attributes = body.get("attributes") or {}
        if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
            raise ApiError(400, "invalid_field", "attributes: an object of name to string value", "attributes")
        expires: datetime | None = None
        if body.get("expires_at") is not None:
            try:
                expires = datetime.fromisoformat(str(body["expires_at"]))
            except ValueError:
                raise ApiError(400, "invalid_field", "expires_at: expected an ISO 8601 time", "expires_at") from None
            expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
        try:
            secret, record = await run_in_threadpool(create_key, store, name.strip(), attributes, expires)
        except InvalidAttribute as exc:
            raise ApiError(400, "invalid_field", str(exc), "attributes") from None
        return {**_view(record), "secret": secret}

    return handler


def revoke_handler(store: Store) -> Any:
    async def handler(call: Call) -> dict[str, Any]:
        key_id = str(call.params["key_id"])
        if not await run_in_threadpool(store.revoke_key, key_id, datetime.now(UTC)):
            raise ApiError(404, "key_not_found", f"key_id: no active key {key_id!r}", "key_id")
        return {"id": key_id, "revoked": True}

    return handler
