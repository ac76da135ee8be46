"""Errors in the client's own wire format (the adapter's error shape), with costplane's headers."""

from __future__ import annotations

from starlette.responses import Response

from costplane.gateway.protocols.base import ProtocolAdapter
from costplane.money import format_usd

__all__ = ["error_response"]

def error_response(
    adapter: ProtocolAdapter,
    status: int,
    code: str,
    message: str,
    *,
    decision_id: str | None = None,
    param: str | None = None,
    retryable: bool = False,
    remaining_nano: int | None = None,
) -> Response:
    reply = adapter.error(status, code, message, param)
    headers = {
        **reply.headers,
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
    return Response(reply.body, status_code=status, media_type=reply.content_type, headers=headers)
