"""The `process` driver: a command in its own process group, its context in COSTPLANE_* variables.

Teardown sends SIGTERM to the whole group, then SIGKILL after the grace period. The handle
keeps pid, process group and the process's start time (from /proc), so a restarted server
finds — and never mistakes a recycled pid for — the process it started. cpu_util is the
leader process's CPU time over wall time between two samples (percent of one core).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from costplane.lifecycle.drivers.base import DriverError, LaunchSpec, context_env
from costplane.lifecycle.drivers.nvml import gpu_util_of

__all__ = ["ProcessDriver", "process_state"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    return text[text.rindex(")") + 2:].split()


def process_state(pid: int, start_ticks: int | None = None) -> str | None:
    """The /proc state letter of `pid` (R, S, Z, …) if it is the process that started at start_ticks."""
    fields = _stat(pid)
    if fields is None:
        return None
    if start_ticks is not None and int(fields[19]) != start_ticks:
        return None  # the pid was recycled
    return fields[0]


class ProcessDriver:
    name = "process"

    def __init__(self, log_dir: Path | None = None) -> None:
        self._log_dir = log_dir
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._samples: dict[int, tuple[float, int]] = {}

    def apply(self, spec: LaunchSpec) -> dict[str, Any]:
        command = [str(part) for part in spec.driver.get("command", ())]
        if not command:
            raise DriverError("the process driver needs a command")
        env = {**os.environ, **{str(k): str(v) for k, v in dict(spec.driver.get("env") or {}).items()},
               **context_env(spec)}
        cwd = spec.driver.get("cwd")
        if cwd and spec.bundle_root is not None and not Path(str(cwd)).is_absolute():
            cwd = str(spec.bundle_root / str(cwd))
        out: Any = subprocess.DEVNULL
        log_path = None
        if self._log_dir is not None:
            self._log_dir.mkdir(parents=True, exist_ok=True)
            log_path = self._log_dir / f"{spec.environment_id}.log"
            out = log_path.open("ab")
        try:
            child = subprocess.Popen(command, env=env, cwd=cwd or None, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            raise DriverError(f"cannot start {command[0]!r}: {exc}") from exc
        finally:
            if log_path is not None:
                out.close()
        with self._lock:
            self._children[child.pid] = child
        fields = _stat(child.pid)
        return {"driver": "process", "pid": child.pid, "pgid": child.pid,
                "start_ticks": int(fields[19]) if fields else None, "command": command,
                "log": str(log_path) if log_path else None}

    def _reap(self, pid: int) -> None:
        with self._lock:
            child = self._children.get(pid)
        if child is not None and child.poll() is not None:
            with self._lock:
                self._children.pop(pid, None)

    def alive(self, handle: Mapping[str, Any]) -> bool:
        pid = int(handle["pid"])
        self._reap(pid)
        state = process_state(pid, handle.get("start_ticks"))
        return state is not None and state not in ("Z", "X")

    def teardown(self, handle: Mapping[str, Any], grace: float) -> None:
        pid, pgid = int(handle["pid"]), int(handle.get("pgid") or handle["pid"])
        if not self.alive(handle):
            self._signal_group(pgid, signal.SIGKILL)  # stragglers of the group, if any
            return
        self._signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + max(0.0, grace)
        while time.monotonic() < deadline:
            if not self.alive(handle):
                break
            time.sleep(0.02)
        self._signal_group(pgid, signal.SIGKILL)
        with self._lock:
            child = self._children.pop(pid, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=2)
        self._samples.pop(pid, None)

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    def metrics(self, handle: Mapping[str, Any]) -> dict[str, float]:
        pid = int(handle["pid"])
        fields = _stat(pid)
        if fields is None:
            return {}
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
        now = time.monotonic()
        previous = self._samples.get(pid)
        self._samples[pid] = (now, ticks)
        out: dict[str, float] = {}
        if previous is not None and now - previous[0] > 0:
            out["cpu_util"] = 100.0 * (ticks - previous[1]) / _TICKS / (now - previous[0])
        gpu = gpu_util_of({pid})
        if gpu is not None:
            out["gpu_util"] = gpu
        return out
