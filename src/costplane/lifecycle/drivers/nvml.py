"""GPU utilisation from NVML (`pynvml`), only where a GPU and the library are present (lazy import)."""

from __future__ import annotations

from typing import Any

__all__ = ["gpu_util_of"]


def gpu_util_of(pids: set[int]) -> float | None:
    """Highest utilisation (percent) of the GPUs running any of `pids`; None without NVML or GPU."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None
    nvml: Any = pynvml
    try:
        nvml.nvmlInit()
    except Exception:  # no driver / no GPU: nothing to measure
        return None
    try:
        best: float | None = None
        for index in range(nvml.nvmlDeviceGetCount()):
            device = nvml.nvmlDeviceGetHandleByIndex(index)
            running = {p.pid for p in nvml.nvmlDeviceGetComputeRunningProcesses(device)}
            if running & pids:
                util = float(nvml.nvmlDeviceGetUtilizationRates(device).gpu)
                best = util if best is None else max(best, util)
        return best
    except Exception:
        return None
    finally:
        nvml.nvmlShutdown()
