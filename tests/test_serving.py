"""`costplane.serving`: uvicorn in a background thread on a free port."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from costplane.serving import BackgroundServer, bind_socket, free_port


def _app() -> Starlette:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    return Starlette(routes=[Route("/", hello)])


def test_background_server_serves_and_stops() -> None:
    server = BackgroundServer(_app())
    with server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert httpx.get(server.url + "/").text == "hello"
        port = server.port
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
    server.stop()  # idempotent


def test_two_servers_get_distinct_ports() -> None:
    with BackgroundServer(_app()) as a, BackgroundServer(_app()) as b:
        assert a.port != b.port
        assert httpx.get(a.url).text == httpx.get(b.url).text == "hello"


def test_explicit_port_and_port_reuse_after_stop() -> None:
    port = free_port()
    with BackgroundServer(_app(), port=port) as server:
        assert server.port == port
    with BackgroundServer(_app(), port=port) as server:
        assert httpx.get(server.url).text == "hello"


def test_url_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        _ = BackgroundServer(_app()).url


def test_failed_startup_raises() -> None:
    @asynccontextmanager
    async def broken(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("no database")
        yield

    with pytest.raises(RuntimeError, match="failed to start"):
        BackgroundServer(Starlette(lifespan=broken)).start()


def test_free_port_and_bind_socket() -> None:
    port = free_port()
    assert 0 < port < 65536
    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.family == socket.AF_INET and sock.getsockname()[1] > 0
    finally:
        sock.close()
