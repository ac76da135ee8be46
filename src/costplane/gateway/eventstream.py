"""The AWS binary event-stream framing (`application/vnd.amazon.eventstream`), both ways.

One message on the wire::

    [total length: u32][headers length: u32][prelude CRC32: u32]
    [headers: name length u8, name, value type u8, value …]
    [payload]
    [message CRC32: u32]

All integers are big-endian; the prelude CRC covers the first 8 bytes, the message CRC every
byte before it. Bedrock Runtime streams (ConverseStream, InvokeModelWithResponseStream) send one
message per event: headers `:message-type` (`event` | `exception`), `:event-type` or
`:exception-type`, `:content-type`, and a JSON payload.

`EventStreamDecoder` takes bytes as they arrive and yields every complete message, checking both
CRCs and the lengths; `encode_message` writes one. The gateway decodes an upstream stream to meter
it and relays each message's original bytes, so a client sees exactly what the provider sent.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "MAX_HEADERS_BYTES",
    "MAX_PAYLOAD_BYTES",
    "EventStreamDecoder",
    "EventStreamError",
    "HeaderValue",
    "Message",
    "encode_event",
    "encode_exception",
    "encode_message",
]

#: Largest headers section and payload accepted (the limits the AWS SDKs enforce).
MAX_HEADERS_BYTES = 128 * 1024
MAX_PAYLOAD_BYTES = 24 * 1024 * 1024
_PRELUDE = 12  # total length, headers length, prelude CRC
_TRAILER = 4  # message CRC
_MIN_MESSAGE = _PRELUDE + _TRAILER

HeaderValue = bool | int | str | bytes | uuid.UUID

# value types of the header encoding
_TRUE, _FALSE, _BYTE, _SHORT, _INT, _LONG, _BYTES, _STRING, _TIMESTAMP, _UUID = range(10)
_INTEGERS = {_BYTE: ">b", _SHORT: ">h", _INT: ">i", _LONG: ">q", _TIMESTAMP: ">q"}


class EventStreamError(ValueError):
    """The bytes are not a valid event stream (a bad CRC, a length out of range, a truncated header)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded message; `raw` is its exact bytes on the wire."""

    headers: Mapping[str, HeaderValue]
    payload: bytes
    raw: bytes

    @property
    def message_type(self) -> str:
        return str(self.headers.get(":message-type", ""))

    @property
    def event_type(self) -> str:
        """`:event-type` of an event, `:exception-type` of an exception."""
        name = ":exception-type" if self.message_type == "exception" else ":event-type"
        return str(self.headers.get(name, ""))

    def json(self) -> Any:
        """The payload decoded as JSON (None when it is not JSON)."""
        try:
            return orjson.loads(self.payload)
        except orjson.JSONDecodeError:
            return None


def _crc(data: bytes, seed: int = 0) -> int:
    return zlib.crc32(data, seed) & 0xFFFFFFFF


def _encode_header(name: str, value: HeaderValue) -> bytes:
    raw_name = name.encode("utf-8")
    if not 0 < len(raw_name) < 256:
        raise ValueError(f"event stream header name must be 1 to 255 bytes, got {len(raw_name)}")
    head = bytes([len(raw_name)]) + raw_name
    if value is True:
        return head + bytes([_TRUE])
    if value is False:
        return head + bytes([_FALSE])
    if isinstance(value, int):
        return head + bytes([_LONG]) + struct.pack(">q", value)
    if isinstance(value, uuid.UUID):
        return head + bytes([_UUID]) + value.bytes
    data, kind = (value.encode("utf-8"), _STRING) if isinstance(value, str) else (bytes(value), _BYTES)
    if len(data) > 0xFFFF:
        raise ValueError(f"event stream header {name!r} is longer than 65535 bytes")
    return head + bytes([kind]) + struct.pack(">H", len(data)) + data


def encode_message(headers: Mapping[str, HeaderValue], payload: bytes) -> bytes:
    """One message: prelude, headers (strings, booleans, 64-bit integers, bytes, UUIDs), payload, CRCs."""
    head = b"".join(_encode_header(name, value) for name, value in headers.items())
    if len(head) > MAX_HEADERS_BYTES or len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError("event stream message too large")
    total = _PRELUDE + len(head) + len(payload) + _TRAILER
    prelude = struct.pack(">II", total, len(head))
    body = prelude + struct.pack(">I", _crc(prelude)) + head + payload
    return body + struct.pack(">I", _crc(body))


def encode_event(event_type: str, payload: Any) -> bytes:
    """A JSON event as Bedrock sends it (`:message-type` event)."""
    return encode_message({":event-type": event_type, ":content-type": "application/json",
                           ":message-type": "event"}, orjson.dumps(payload))


def encode_exception(exception_type: str, message: str) -> bytes:
    """An exception event (`:message-type` exception), e.g. `modelStreamErrorException`; the AWS SDKs
    raise it as an error with that code in the middle of the stream."""
    return encode_message({":exception-type": exception_type, ":content-type": "application/json",
                           ":message-type": "exception"}, orjson.dumps({"message": message}))


def _decode_headers(data: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    at = 0
    end = len(data)
    try:
        while at < end:
            size = data[at]
            name = data[at + 1: at + 1 + size].decode("utf-8")
            at += 1 + size
            kind = data[at]
            at += 1
            value: HeaderValue
            if kind == _TRUE:
                value = True
            elif kind == _FALSE:
                value = False
            elif kind in _INTEGERS:
                fmt = _INTEGERS[kind]
                width = struct.calcsize(fmt)
                (value,) = struct.unpack_from(fmt, data, at)
                at += width
            elif kind in (_BYTES, _STRING):
                (length,) = struct.unpack_from(">H", data, at)
                raw = data[at + 2: at + 2 + length]
                if len(raw) != length:
                    raise EventStreamError(f"header {name!r} is truncated")
                value = raw.decode("utf-8") if kind == _STRING else raw
                at += 2 + length
            elif kind == _UUID:
                raw = data[at: at + 16]
                if len(raw) != 16:
                    raise EventStreamError(f"header {name!r} is truncated")
                value = uuid.UUID(bytes=raw)
                at += 16
            else:
                raise EventStreamError(f"header {name!r} has unknown value type {kind}")
            if at > end or not name:
                raise EventStreamError("a header runs past the headers section")
            if name in headers:
                raise EventStreamError(f"header {name!r} appears twice")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError(f"malformed headers: {exc}") from None
    return headers


class EventStreamDecoder:
    """Incremental decoder: `feed(chunk)` returns the messages completed by `chunk`.

    `pending` is the number of bytes of an incomplete message held; after the stream ends, a
    non-zero `pending` means the stream was cut mid-message."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[Message]:
        self._buffer += chunk
        out: list[Message] = []
        while len(self._buffer) >= _PRELUDE:
            total, headers_length, prelude_crc = struct.unpack_from(">III", self._buffer, 0)
            if _crc(bytes(self._buffer[:8])) != prelude_crc:
                raise EventStreamError("prelude CRC mismatch")
            if headers_length > MAX_HEADERS_BYTES:
                raise EventStreamError(f"headers length {headers_length} exceeds {MAX_HEADERS_BYTES}")
            payload_length = total - _MIN_MESSAGE - headers_length
            if payload_length < 0 or payload_length > MAX_PAYLOAD_BYTES:
                raise EventStreamError(f"message length {total} does not fit its headers length {headers_length}")
            if len(self._buffer) < total:
                break
            raw = bytes(self._buffer[:total])
            del self._buffer[:total]
            (message_crc,) = struct.unpack_from(">I", raw, total - _TRAILER)
            if _crc(raw[:-_TRAILER]) != message_crc:
                raise EventStreamError("message CRC mismatch")
            headers = _decode_headers(raw[_PRELUDE: _PRELUDE + headers_length])
            out.append(Message(headers, raw[_PRELUDE + headers_length: total - _TRAILER], raw))
        return out
