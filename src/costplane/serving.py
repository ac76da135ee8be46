"""Run an ASGI app under uvicorn: in a background thread (tests, demo, benchmarks), in front, or
as N worker processes sharing one listening socket (`run_workers`, `costplane serve --workers N`).

    with BackgroundServer(create_app(config)) as server:
        client = OpenAI(base_url=server.url + "/v1", api_key="x")

The listening socket is bound before uvicorn starts (port 0 picks a free port), so `.url` is
known and there is no race between choosing a port and using it.

`run_workers` binds the socket once in the supervising process and starts N processes (spawned,
not forked: no thread or connection of the parent leaks into a worker), each building its own
application from a picklable factory and accepting on the shared socket. The workers share
nothing in memory: budgets are shared through the ledger (with leases on, each worker holds its own
leases and journal). A worker that exits is started again (its successor replays its journal); one
that dies within `QUICK_EXIT_S` of starting stops the whole pool (a configuration that cannot
serve). SIGTERM/SIGINT to the supervisor stop every worker gracefully.
"""

from __future__ import annotations

import gc
import importlib.util
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from types import TracebackType
from typing import Any, Literal

import uvicorn

__all__ = ["QUICK_EXIT_S", "BackgroundServer", "WorkerPoolError", "bind_socket", "free_port", "freeze_heap",
           "run_server", "run_workers", "uvicorn_config"]

#: a worker that exits this soon after it started means the pool cannot serve: stop
QUICK_EXIT_S = 3.0

_log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (prefer binding port 0 yourself: no race)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening-ready TCP socket bound to host:port (port 0: the OS picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def uvicorn_config(app: Any, *, log_level: str = "warning", graceful_shutdown_s: float | None = 5.0,
                   **overrides: Any) -> uvicorn.Config:
    """uvicorn settings for costplane: uvloop and httptools when installed, no access log."""
    loop: Literal["uvloop", "asyncio"] = "uvloop" if _has("uvloop") else "asyncio"
    http: Literal["httptools", "h11"] = "httptools" if _has("httptools") else "h11"
    settings: dict[str, Any] = {
        "loop": loop,
        "http": http,
        "lifespan": "auto",
        "access_log": False,
        "log_level": log_level,
        "timeout_graceful_shutdown": graceful_shutdown_s,
        "server_header": False,
    }
    settings.update(overrides)
    return uvicorn.Config(app, **settings)


def run_server(app: Any, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "info",
               on_bound: Any = None) -> None:
    """Serve `app` in the foreground until Ctrl-C; `on_bound(url)` is called once the port is bound."""
    sock = bind_socket(host, port)
    url = _url(host, sock.getsockname()[1])
    if on_bound is not None:
        on_bound(url)
    server = uvicorn.Server(uvicorn_config(app, log_level=log_level))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


class WorkerPoolError(RuntimeError):
    """A worker could not start (it exited right away): the pool stopped."""


def freeze_heap() -> None:
    """Take every object alive now out of the cyclic garbage collector's scans, for the life of
    the process (`gc.freeze`), after collecting what is already garbage. Called by a serving
    process once its application is built: the bundle, the price catalogs, the routes and the
    imported modules are some 130 k objects that live as long as the process, and every full
    collection scanned them all — a pause of every request in flight (up to 61 ms measured on
    the gateway). Objects made later are collected as before; a frozen object that becomes garbage
    is still freed when nothing refers to it, only a frozen cycle stays (a reloaded bundle's)."""
    gc.collect()
    gc.freeze()


def _serve_worker(factory: Callable[[], Any], sock: socket.socket, log_level: str) -> None:
    """One worker process: build the application, serve on the shared socket until SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor, which stops us
    app = factory()
    freeze_heap()
    server = uvicorn.Server(uvicorn_config(app, log_level=log_level))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def run_workers(factory: Callable[[], Any], host: str = "127.0.0.1", port: int = 0, workers: int = 2, *,
                log_level: str = "info", on_bound: Callable[[str], None] | None = None,
                stop: threading.Event | None = None, graceful_shutdown_s: float = 10.0,
                quick_exit_s: float = QUICK_EXIT_S) -> None:
    """Serve `factory()` (called in each worker; picklable: a module-level function or a partial of
    one) from `workers` processes on one socket until SIGTERM/SIGINT (or `stop` is set, for callers
    that are not the main thread). `on_bound(url)` is called once the port is bound."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    sock = bind_socket(host, port)
    sock.listen(2048)
    url = _url(host, sock.getsockname()[1])
    if on_bound is not None:
        on_bound(url)
    ctx = multiprocessing.get_context("spawn")
    done = stop or threading.Event()
    if stop is None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
    pool: dict[int, tuple[Any, float]] = {}

    def start(slot: int) -> None:
        proc = ctx.Process(target=_serve_worker, args=(factory, sock, log_level), name=f"costplane-worker-{slot}")
        proc.start()
        pool[slot] = (proc, time.monotonic())

    failed: str | None = None
    try:
        for slot in range(workers):
            start(slot)
        while not done.is_set() and failed is None:
            wait([proc.sentinel for proc, _ in pool.values()], timeout=0.2)
            for slot, (proc, started) in list(pool.items()):
                if proc.is_alive() or done.is_set():
                    continue
                if time.monotonic() - started < quick_exit_s:
                    failed = f"worker {slot} exited with code {proc.exitcode} right after it started"
                    break
                _log.warning("worker %d (pid %s) exited with code %s; starting it again", slot, proc.pid,
                             proc.exitcode)
                start(slot)
    finally:
        for proc, _ in pool.values():
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc, _ in pool.values():
            proc.join(graceful_shutdown_s + 5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        sock.close()
    if failed is not None:
        raise WorkerPoolError(failed)


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class BackgroundServer:
    """Serve an ASGI app under uvicorn in a daemon thread; a context manager.

    `start()` returns once the server accepts connections; `.url` is `http://host:port`.
    `stop()` asks uvicorn to exit (in-flight requests get `graceful_shutdown_s`) and joins.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning",
                 startup_timeout_s: float = 10.0, graceful_shutdown_s: float = 2.0) -> None:
        self.app = app
        self.host = host
        self._requested_port = port
        self._startup_timeout_s = startup_timeout_s
        self._config = uvicorn_config(app, log_level=log_level, graceful_shutdown_s=graceful_shutdown_s)
        self._server = uvicorn.Server(self._config)
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._port: int | None = None
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def url(self) -> str:
        return _url(self.host, self.port)

    def start(self) -> BackgroundServer:
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._socket = bind_socket(self.host, self._requested_port)
        self._port = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name=f"uvicorn-{self._port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout_s
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                self._cleanup()
                raise RuntimeError(f"server failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"server did not start within {self._startup_timeout_s} s")
            time.sleep(0.005)
        self._wait_accepting(deadline)
        return self

    def _run(self) -> None:
        assert self._socket is not None
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            _log.exception("background server crashed")

    def _wait_accepting(self, deadline: float) -> None:
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop serving and wait for the thread (force-exit after `timeout_s`)."""
        thread = self._thread
        if thread is None:
            return
        self._server.should_exit = True
        thread.join(timeout_s)
        if thread.is_alive():
            self._server.force_exit = True
            thread.join(timeout_s)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._thread = None

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
