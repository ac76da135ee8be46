"""API errors: every failure is JSON `{"error": {"code", "message", "field", …details}}`.

A refusal by the decision core (an environment launch denied by a policy or a budget) adds
its explanation to the error: `decision_id`, `bundle_revision`, `policies`, `reason`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

__all__ = ["ApiError", "error_response"]


class ApiError(Exception):
    """Raised by a handler or the parameter layer; rendered by `error_response`."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details: dict[str, Any] = dict(details or {})


def error_response(error: ApiError) -> JSONResponse:
    body = {"code": error.code, "message": error.message, "field": error.field, **error.details}
    response = JSONResponse({"error": body}, status_code=error.status)
    if error.details.get("decision_id"):
        response.headers["x-costplane-decision-id"] = str(error.details["decision_id"])
    return response
