"""Error bodies in the OpenAI and Anthropic formats, and the exception endpoints raise."""

from __future__ import annotations

import orjson
from starlette.responses import Response

__all__ = [
    "InvalidRequest",
    "anthropic_error",
    "anthropic_error_type",
    "openai_error",
    "openai_error_type",
]

_JSON = "application/json"


class InvalidRequest(Exception):
    """The request is malformed: answered with 400 `invalid_request_error` in the API's format."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status


def openai_error_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 404:
        return "not_found_error"
    if status == 429:
        return "requests"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def anthropic_error_type(status: int) -> str:
    return {
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        500: "api_error",
        503: "overloaded_error",
        529: "overloaded_error",
    }.get(status, "api_error" if status >= 500 else "invalid_request_error")


def openai_error(status: int, message: str, *, type_: str | None = None, param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None) -> Response:
    """`{"error": {"message", "type", "param", "code"}}` with `status`."""
    body = {"error": {"message": message, "type": type_ or openai_error_type(status), "param": param,
                      "code": code}}
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=_JSON)


def anthropic_error(status: int, message: str, *, type_: str | None = None,
                    headers: dict[str, str] | None = None) -> Response:
    """`{"type": "error", "error": {"type", "message"}}` with `status`."""
    body = {"type": "error", "error": {"type": type_ or anthropic_error_type(status), "message": message}}
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=_JSON)
