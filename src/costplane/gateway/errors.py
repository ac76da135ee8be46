"""Errors in the client's own wire format (OpenAI or Anthropic), with costplane's headers."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from costplane.money import format_usd

__all__ = ["error_response"]

_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "insufficient_quota",
                 403: "permission_error", 404: "not_found_error", 413: "invalid_request_error",
                 415: "invalid_request_error",
                 429: "rate_limit_error", 502: "api_error", 503: "api_error", 504: "timeout"}
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                    403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                    415: "invalid_request_error",
                    429: "rate_limit_error", 502: "api_error", 503: "overloaded_error", 504: "api_error"}


def error_response(
    protocol: str,
    status: int,
    code: str,
    message: str,
    *,
    decision_id: str | None = None,
    param: str | None = None,
    retryable: bool = False,
    remaining_nano: int | None = None,
) -> Response:
    if protocol == "anthropic":
        body: dict[str, object] = {"type": "error", "error": {"type": _ANTHROPIC_TYPES.get(status, "api_error"),
                                                              "message": message}}
    else:
        body = {"error": {"message": message, "type": _OPENAI_TYPES.get(status, "api_error"),
                          "param": param, "code": code}}
    headers = {
        "x-costplane-error-code": code,
        "x-costplane-cost-usd": "0",
        # The official SDKs retry 429/5xx on their own; a budget, policy or loop
        # denial will not change on retry, so tell them not to.
        "x-should-retry": "true" if retryable else "false",
    }
    if retryable:
        headers["retry-after"] = "1"
    if param:
        # Anthropic's error body has no slot for the field; the header names it for both formats.
        # (escaped to printable ASCII: a field name is client input)
        headers["x-costplane-error-param"] = param[:512].encode("unicode_escape").decode("ascii")
    if decision_id:
        headers["x-costplane-decision-id"] = decision_id
    if remaining_nano is not None:
        headers["x-costplane-budget-remaining-usd"] = format_usd(remaining_nano)
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)
