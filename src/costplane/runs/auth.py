"""Costplane-key authentication for the JSON API routes (runs, outcomes, OTLP)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from costplane.gateway.keys import KeyVerifier
from costplane.ledger.types import KeyRecord

__all__ = ["api_error", "authenticate"]


def api_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def authenticate(keys: KeyVerifier, request: Request) -> KeyRecord | None:
    auth = request.headers.get("authorization", "")
    secret = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("x-api-key", "")
    return keys.verify(secret) if secret else None
