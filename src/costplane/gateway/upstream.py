"""Upstream I/O behind one small interface, so the gateway's logic never touches aiohttp directly."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp

__all__ = ["AiohttpTransport", "UpstreamError", "UpstreamResponse", "UpstreamTransport"]


class UpstreamError(Exception):
    """The upstream could not be reached, timed out, or broke the connection."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind  # timeout | connect | broken
        super().__init__(message)


@dataclass
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]
    _response: aiohttp.ClientResponse

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except TimeoutError as exc:
            raise UpstreamError("timeout", "upstream timed out while sending its response") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError("broken", f"upstream broke the connection: {exc}") from exc
        finally:
            self._response.release()

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError as exc:
            raise UpstreamError("timeout", "upstream timed out mid-stream") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError("broken", f"upstream stream was cut: {exc}") from exc
        finally:
            self._response.release()

    def close(self) -> None:
        self._response.close()


class UpstreamTransport(Protocol):
    async def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                   timeout: float) -> UpstreamResponse: ...

    async def post(self, url: str, headers: Mapping[str, str], body: bytes, timeout: float) -> UpstreamResponse: ...

    async def get(self, url: str, headers: Mapping[str, str], timeout: float) -> UpstreamResponse: ...

    async def close(self) -> None: ...


class AiohttpTransport:
    """One pooled aiohttp session for all providers (created lazily inside the event loop)."""

    def __init__(self, limit: int = 1000) -> None:
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}  # built once per value, not per request

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._limit, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        return self._session

    async def _send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                    timeout: float) -> UpstreamResponse:
        try:
            response = await self._client().request(
                method, url, data=body, headers=dict(headers),
                timeout=self._timeout(timeout),
            )
        except TimeoutError as exc:
            raise UpstreamError("timeout", f"upstream did not answer within {timeout:g}s") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError("connect", f"upstream unreachable: {exc}") from exc
        return UpstreamResponse(response.status, response.headers, response)

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = self._timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return timeout

    async def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                   timeout: float) -> UpstreamResponse:
        return await self._send(method, url, headers, body if body or method == "POST" else None, timeout)

    async def post(self, url: str, headers: Mapping[str, str], body: bytes, timeout: float) -> UpstreamResponse:
        return await self._send("POST", url, headers, body, timeout)

    async def get(self, url: str, headers: Mapping[str, str], timeout: float) -> UpstreamResponse:
        return await self._send("GET", url, headers, None, timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
