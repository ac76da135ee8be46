"""API errors: every failure is JSON `{"error": {"code", "message", "field", …details}}`.

A refusal by the decision core (an environment launch denied by a policy or a budget) adds
its explanation to the error: `decision_id`, `bundle_revision`, `policies`, `reason`. No error
names a server path: messages and reasons pass through `bundle_relative` on the way out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

from costplane.api.redact import bundle_relative

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
    details = {k: bundle_relative(v) if k == "reason" and isinstance(v, str) else v for k, v in error.details.items()}
    body = {"code": error.code, "message": bundle_relative(error.message), "field": error.field, **details}
    response = JSONResponse({"error": body}, status_code=error.status)
    if error.details.get("decision_id"):
        response.headers["x-costplane-decision-id"] = str(error.details["decision_id"])
    return response
