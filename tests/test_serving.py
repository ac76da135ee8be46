"""`costplane.serving`: uvicorn in a background thread on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from typer.testing import CliRunner

from costplane.app import Application
from costplane.cli.main import app as cli
from costplane.config import parse_config
from costplane.gateway.keys import create_key
from costplane.serving import BackgroundServer, WorkerPoolError, bind_socket, free_port, run_workers
from costplane.simulator.app import create_app
from costplane.simulator.config import SimulatorConfig
from store_fixtures import pg_schema


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


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_serve_workers_share_one_budget(tmp_path: Path, backend: str) -> None:
    """`costplane serve --workers 3`: 500 concurrent calls against a hard budget that fits ~100
    worst cases, spread by the kernel over three worker processes — never over the limit, nearly all
    of it served, every served call metered once (SQLite and PostgreSQL)."""
    from gateway.conftest import gateway_config, write_bundle
    from gateway.test_concurrency import REQUESTS, budget_for, fire

    limit, bundle = budget_for(100)
    store = pg_schema() if backend == "postgres" else contextlib.nullcontext(f"sqlite:///{tmp_path / 'w.db'}")
    with BackgroundServer(create_app(SimulatorConfig())) as simulator, store as store_url:
        data = gateway_config(simulator.url, store_url, write_bundle(tmp_path, bundle))
        config = tmp_path / "costplane.yaml"
        config.write_text(yaml.safe_dump(data))
        application = Application(parse_config(data, base=tmp_path))
        key, _ = create_key(application.store, "burst", {"team": "burst"})
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = tmp_path / "serve.log"
        argv = [sys.executable, "-m", "costplane", "serve", "--config", str(config), "--port", str(port),
                "--workers", "3", "--log-level", "warning"]
        pool = subprocess.Popen(argv, stdout=log.open("ab"), stderr=subprocess.STDOUT)
        try:
            for _ in range(300):
                assert pool.poll() is None, log.read_text()[-2000:]
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                time.sleep(0.1)
            statuses = asyncio.run(fire([url], key, REQUESTS))
            scrape = httpx.get(url + "/metrics", timeout=10).text  # whichever worker answers
        finally:
            pool.send_signal(signal.SIGTERM)
            pool.wait(60)
        assert pool.returncode == 0, log.read_text()[-2000:]
        served = statuses.count(200)
        assert set(statuses) <= {200, 402}, sorted(set(statuses))
        assert sum(e.cost_nano for e in application.store.list_events(limit=10_000)) <= limit
        assert served >= 95 and application.store.count_events() == served
        assert application.store.open_reservations() == 0
        frozen = re.search(r"^costplane_gc_frozen_objects (\d+)$", scrape, re.M)
        assert frozen is not None and int(frozen.group(1)) > 50_000  # the worker froze its start-up heap
        application.close()
