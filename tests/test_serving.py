"""`costplane.serving`: uvicorn in a background thread on a free port."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from typer.testing import CliRunner

from costplane.cli.main import app as cli
from costplane.serving import BackgroundServer, WorkerPoolError, bind_socket, free_port, run_workers


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


def pid_app() -> Starlette:
    """A worker's application: answers with its process id (module-level: workers are spawned)."""

    async def pid(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(os.getpid()))

    return Starlette(routes=[Route("/", pid)])


def broken_app() -> Starlette:
    raise RuntimeError("this configuration cannot serve")


def _pid(url: str) -> int | None:
    try:
        return int(httpx.get(url, timeout=5).text)  # a new connection each time: any worker may accept it
    except httpx.TransportError:
        return None


def test_workers_share_one_port_and_a_killed_worker_is_replaced() -> None:
    stop, urls = threading.Event(), []
    pool = threading.Thread(target=run_workers, args=(pid_app,), kwargs={
        "workers": 2, "log_level": "warning", "on_bound": urls.append, "stop": stop, "graceful_shutdown_s": 1.0,
        "quick_exit_s": 0.0})
    pool.start()
    try:
        seen: set[int] = set()
        for _ in range(2000):  # until both workers have answered (they start in a second or two)
            pid = _pid(urls[0]) if urls else None
            if pid is not None:
                seen.add(pid)
            if len(seen) == 2:
                break
            stop.wait(0.01)
        assert len(seen) == 2 and os.getpid() not in seen
        victim = min(seen)
        os.kill(victim, signal.SIGKILL)
        replaced = None
        for _ in range(2000):
            pid = _pid(urls[0])
            if pid is not None and pid not in seen:
                replaced = pid
                break
            stop.wait(0.01)
        assert replaced is not None  # the supervisor started another worker on the same socket
    finally:
        stop.set()
        pool.join(30)
    assert not pool.is_alive()
    assert _pid(urls[0]) is None  # every worker stopped, the socket closed


def test_a_worker_that_cannot_start_stops_the_pool() -> None:
    with pytest.raises(WorkerPoolError, match="right after it started"):
        run_workers(broken_app, workers=2, log_level="critical", stop=threading.Event(), quick_exit_s=30.0)


def test_serve_rejects_a_worker_count_out_of_range() -> None:
    result = CliRunner().invoke(cli, ["serve", "--workers", "0"])
    assert result.exit_code == 2 and "--workers: expected 1 to 64, got 0" in result.output
