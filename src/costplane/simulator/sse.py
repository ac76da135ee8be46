"""Server-sent events: a pre-rendered event sequence, paced, optionally cut mid-stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from costplane.simulator.faults import wait_for_disconnect

__all__ = ["EventStreamResponse", "sse_frame"]

_BATCH = 8  # events per write when there is no pacing delay


def sse_frame(data: bytes, event: str | None = None) -> bytes:
    """One SSE frame: optional `event:` line, one `data:` line, blank line."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


class EventStreamResponse(Response):
    """Stream `frames` (already SSE-encoded).

    `paced[i]` true means frame i is a token: it waits `delay_s` first. With `cut_after` set, only
    that many frames are sent, then the connection is dropped without ending the stream.
    """

    media_type = "text/event-stream; charset=utf-8"

    def __init__(self, frames: Sequence[bytes], paced: Sequence[bool], *, delay_s: float = 0.0,
                 cut_after: int | None = None, headers: dict[str, str] | None = None) -> None:
        merged = {"cache-control": "no-cache", "content-type": self.media_type}
        if headers:
            merged.update(headers)
        super().__init__(None, status_code=200, headers=merged)
        self.frames = frames
        self.paced = paced
        self.delay_s = delay_s
        self.cut_after = cut_after

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        # No content-length: the body is streamed (chunked).
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        count = len(self.frames) if self.cut_after is None else min(self.cut_after, len(self.frames))
        if self.delay_s > 0:
            if not await self._send_paced(receive, send, count):
                return
        else:
            for start in range(0, count, _BATCH):
                chunk = b"".join(self.frames[start:min(start + _BATCH, count)])
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if self.cut_after is not None:
            return  # returning without ending the body drops the connection
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_paced(self, receive: Receive, send: Send, count: int) -> bool:
        watcher = asyncio.ensure_future(wait_for_disconnect(receive))
        try:
            for index in range(count):
                if self.paced[index]:
                    await asyncio.sleep(self.delay_s)
                if watcher.done():
                    return False
                await send({"type": "http.response.body", "body": self.frames[index], "more_body": True})
            return True
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
