"""Injected faults: HTTP errors, hung requests and cut connections.

A fault comes from the request header `x-simulator-fault` (an HTTP status 400-599, `timeout`
or `cut`) or, for completion/message/embedding requests, from the seeded global draw
(`SimulatorConfig.fault_rate`). `timeout` keeps the request open without answering until the
client disconnects (or `timeout_hang_s` passed: then 504); `cut` closes the connection mid-answer
(streams: after about half of the tokens, before the final usage; plain: mid-body).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from costplane.simulator.config import parse_fault
from costplane.simulator.errors import InvalidRequest

__all__ = [
    "FAULT_HEADER",
    "CutResponse",
    "HangResponse",
    "fault_status",
    "requested_fault",
    "wait_for_disconnect",
]

#: Request header that injects a fault into that request.
FAULT_HEADER = "x-simulator-fault"


def requested_fault(headers: Mapping[str, str]) -> str | None:
    """The fault named by the request's `x-simulator-fault` header, if any."""
    value = headers.get(FAULT_HEADER)
    if not value:
        return None
    try:
        return parse_fault(value)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param=FAULT_HEADER) from None


def fault_status(fault: str) -> int | None:
    """The HTTP status of an error fault, None for `timeout`/`cut`."""
    return int(fault) if fault.isdigit() else None


async def wait_for_disconnect(receive: Receive) -> None:
    """Return once the client has gone (the request body must have been read already)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class HangResponse(Response):
    """Accept the request, then say nothing until the client gives up or `hang_s` passed."""

    def __init__(self, hang_s: float, late_answer: Response) -> None:
        super().__init__(status_code=late_answer.status_code)
        self.hang_s = hang_s
        self.late_answer = late_answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await asyncio.wait_for(wait_for_disconnect(receive), timeout=self.hang_s)
        except TimeoutError:
            await self.late_answer(scope, receive, send)


class CutResponse(Response):
    """Start a 200 answer announcing the whole body, send half of it, then drop the connection."""

    def __init__(self, body: bytes, media_type: str = "application/json") -> None:
        super().__init__(body, status_code=200, media_type=media_type)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        body = bytes(self.body)
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        # Returning without the last body message makes the server close the connection.
