"""Server-sent events for the stream translators: split a byte stream into (event, data) and write frames."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["SseParser", "frame", "json_of"]


class SseParser:
    """Feeds bytes, yields complete events as (event name or None, data text)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[tuple[str | None, str]]:
        self._buffer += chunk.replace(b"\r\n", b"\n")
        events: list[tuple[str | None, str]] = []
        while b"\n\n" in self._buffer:
            raw, self._buffer = self._buffer.split(b"\n\n", 1)
            name: str | None = None
            data: list[str] = []
            for line in raw.decode("utf-8", "replace").split("\n"):
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip(" ") if line[5:6] == " " else line[5:])
            if data:
                events.append((name, "\n".join(data)))
        return events


def json_of(data: str) -> dict[str, Any] | None:
    """The event's JSON object, or None (`[DONE]`, a comment, anything not an object)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def frame(payload: dict[str, Any] | str, event: str | None = None) -> bytes:
    data = payload.encode() if isinstance(payload, str) else orjson.dumps(payload)
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + data + b"\n\n"
