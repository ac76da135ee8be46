"""What every simulated endpoint shares: body parsing, fault handling, latency, recording.

`endpoint(state, protocol, handler)` turns a synchronous `handler(call) -> Response` into a
Starlette endpoint. Malformed requests become 400s in the protocol's error format; error and
`timeout` faults are answered here; `cut` is left to the handler (`call.cut`), which knows how to
cut its own answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from starlette.requests import Request
from starlette.responses import Response

from costplane.simulator.answers import MAX_FORCED_OUTPUT_TOKENS
from costplane.simulator.errors import InvalidRequest, anthropic_error, openai_error
from costplane.simulator.faults import HangResponse, fault_status, requested_fault
from costplane.simulator.state import SimulatorState

__all__ = ["OUTPUT_TOKENS_HEADER", "Call", "Handler", "Protocol", "endpoint", "json_response"]

#: Request header forcing the number of output tokens (still capped by max tokens).
OUTPUT_TOKENS_HEADER = "x-simulator-output-tokens"

Protocol = Literal["openai", "anthropic"]
Handler = Callable[["Call"], Response]
_REDACTED = frozenset({"authorization", "x-api-key", "api-key"})
_JSON = "application/json"


@dataclass(slots=True)
class Call:
    """One request as handlers see it."""

    state: SimulatorState
    request: Request
    body: dict[str, Any]
    seq: int
    fault: str | None
    created: int

    @property
    def cut(self) -> bool:
        return self.fault == "cut"

    def forced_output_tokens(self) -> int | None:
        value = self.request.headers.get(OUTPUT_TOKENS_HEADER)
        if value is None:
            return None
        text = value.strip()
        if not text.isdigit() or int(text) > MAX_FORCED_OUTPUT_TOKENS:
            raise InvalidRequest(f"{OUTPUT_TOKENS_HEADER} must be an integer within "
                                 f"[0, {MAX_FORCED_OUTPUT_TOKENS}], got {value!r}",
                                 param=OUTPUT_TOKENS_HEADER)
        return int(text)

    def request_id(self) -> str:
        return f"req_sim{self.seq:010d}"


def json_response(payload: object, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, headers=headers, media_type=_JSON)


def _error(protocol: Protocol, status: int, message: str, *, param: str | None = None,
           code: str | None = None, headers: dict[str, str] | None = None) -> Response:
    if protocol == "openai":
        return openai_error(status, message, param=param, code=code, headers=headers)
    return anthropic_error(status, message, headers=headers)


async def _read_json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def endpoint(state: SimulatorState, protocol: Protocol, handler: Handler, *,
             draws_faults: bool = True) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint running `handler` with the simulator's common behaviour."""
    config = state.config
    latency_s = config.latency_ms / 1000.0

    async def run(request: Request) -> Response:
        path: str = request.scope["path"]
        seq = state.next_request(path)
        try:
            body = await _read_json(request) if request.method == "POST" else {}
            fault = requested_fault(request.headers)
            if fault is None and draws_faults:
                fault = state.draw_fault()
            if state.config.record_requests:
                state.record({
                    "seq": seq, "method": request.method, "path": path, "fault": fault,
                    "headers": {k: ("***" if k in _REDACTED else v) for k, v in request.headers.items()},
                    "body": body,
                })
            if fault is not None:
                state.faults[fault] += 1
            response = _fault_response(protocol, fault, config.timeout_hang_s)
            if response is None:
                response = handler(Call(state, request, body, seq, fault, int(time.time())))
        except InvalidRequest as exc:
            response = _error(protocol, exc.status, exc.message, param=exc.param, code=exc.code)
        if latency_s > 0:
            await asyncio.sleep(latency_s)
        return response

    return run


def _fault_response(protocol: Protocol, fault: str | None, hang_s: float) -> Response | None:
    if fault is None or fault == "cut":
        return None
    if fault == "timeout":
        return HangResponse(hang_s, _error(protocol, 504, "Simulated upstream timeout."))
    status = fault_status(fault)
    assert status is not None
    headers = {"retry-after": "1"} if status in (429, 503, 529) else None
    code = "rate_limit_exceeded" if status == 429 and protocol == "openai" else None
    return _error(protocol, status, f"Simulated upstream fault: HTTP {status}.", code=code, headers=headers)
