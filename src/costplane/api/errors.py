"""API errors: every failure is JSON `{"error": {"code", "message", "field"}}`."""

from __future__ import annotations

from starlette.responses import JSONResponse

__all__ = ["ApiError", "error_response"]


class ApiError(Exception):
    """Raised by a handler or the parameter layer; rendered by `error_response`."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse({"error": {"code": error.code, "message": error.message, "field": error.field}},
                        status_code=error.status)
