"""Non-LLM cost of runs: GPU-seconds, storage and egress priced from the SKU catalog.

    with costplane.pipeline_run("fraud-train", experiment="exp-42", session=s):
        with costplane.step("train"), costplane.gpu_job("aws/g5.xlarge") as job:
            train()                      # job.cost_nano: what it has cost so far (wall time)
        costplane.resource_cost("storage", "aws/s3-standard-gib-hour", seconds=3600, count=50)

Cost is `SkuPrice.cost_nano(seconds, count)` — exact, from the same catalog the
environments use (`pricing.skus`). An unknown SKU raises `UnknownSku` before anything is
recorded (never a $0 event). `gpu_job` samples NVML utilisation while it runs when
`pynvml` is installed and a GPU is present (otherwise it records no utilisation).
"""

from __future__ import annotations

import importlib
import threading
import time
from dataclasses import replace
from decimal import Decimal
from typing import Any

from costplane.ledger.runtypes import RunNode
from costplane.ledger.types import CostEvent
from costplane.pricing.skus import SkuCatalog, SkuPrice
from costplane.sdk.context import Frame, Scope, current_frame
from costplane.sdk.runs import new_node_id, require_session
from costplane.sdk.session import Session

__all__ = ["GpuJob", "gpu_job", "resource_cost"]

RESOURCE_KINDS = ("gpu", "compute", "storage", "egress")


def _catalog(session: Session) -> SkuCatalog:
    cached: SkuCatalog | None = getattr(session, "_costplane_skus", None)
    if cached is None:
        cached = SkuCatalog.load(session._pricing)
        session._costplane_skus = cached  # type: ignore[attr-defined]
    return cached


def _record(session: Session, frame: Frame, kind: str, price: SkuPrice, seconds: Decimal, count: int,
            name: str, node: RunNode | None, attributes: dict[str, Any]) -> CostEvent:
    cost = price.cost_nano(seconds, count)
    ctx = frame.context()
    if frame.node:
        ctx = ctx.with_values(tags={**ctx.tags, "node": frame.node})  # type: ignore[arg-type]
    event = CostEvent(id=new_node_id("evt"), ts=session.clock(), context=ctx, provider=price.provider,
                      model=price.sku, cost_nano=cost, kind=kind, endpoint=name,
                      unit_prices={"hourly_usd": str(price.hourly_usd), "count": str(count), "seconds": str(seconds)})
    if frame.run is not None:
        frame.run.guard.charge(cost)
    nodes = []
    if node is not None:
        nodes.append(replace(node, ended_at=session.clock(), status="ok", event_id=event.id,
                             attributes={**node.attributes, **attributes, "seconds": str(seconds), "count": count}))
    session.record(nodes=nodes, events=[event])
    return event


def resource_cost(kind: str, sku: str, *, seconds: int | Decimal, count: int = 1, name: str | None = None,
                  session: Session | None = None) -> CostEvent:
    """Record `count` units of `sku` used for `seconds` as a cost event of `kind` (gpu, compute,
    storage, egress) in the current run; returns the event."""
    if kind not in RESOURCE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(RESOURCE_KINDS)}, got {kind!r}")
    target = require_session(session, f"{kind} cost of {sku!r}")
    price = _catalog(target).lookup(sku)
    return _record(target, current_frame(), kind, price, Decimal(seconds), count, name or sku, None, {})


class GpuJob(Scope):
    """A GPU job accruing cost by wall time (a tree node of kind gpu)."""

    def __init__(self, sku: str, count: int, name: str | None, session: Session | None,
                 sample_interval: float) -> None:
        super().__init__()
        self.sku, self.count, self.name = sku, count, name or sku
        self._session, self.sample_interval = session, sample_interval
        self._start = 0.0
        self._end = 0.0
        self._price: SkuPrice | None = None
        self._samples: list[float] = []
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None
        self._frame_in: Frame | None = None
        self.node: RunNode | None = None
        self.event: CostEvent | None = None

    def _fresh(self) -> Scope:
        return GpuJob(self.sku, self.count, self.name, self._session, self.sample_interval)

    @property
    def seconds(self) -> Decimal:
        if not self._start:
            return Decimal(0)
        return Decimal(str(round((self._end or time.monotonic()) - self._start, 6)))  # frozen once it ended

    @property
    def cost_nano(self) -> int:
        """What the job has cost so far."""
        return self._price.cost_nano(self.seconds, self.count) if self._price else 0

    def _enter(self) -> GpuJob:
        session = require_session(self._session, f"gpu job {self.sku!r}")
        self._session = session
        self._price = _catalog(session).lookup(self.sku)  # UnknownSku before the job starts
        outer = current_frame()
        if outer.run is not None:
            self.node = RunNode(id=new_node_id("gpu"), run=outer.run.root, kind="gpu", name=self.name,
                                started_at=session.clock(), parent_id=outer.node, context=outer.context(),
                                attributes={"sku": self.sku, "count": self.count})
            session.record(nodes=[self.node])
        self._frame_in = outer
        self._start = time.monotonic()
        self._sampler = _start_sampler(self._samples, self._stop, self.sample_interval)
        return self

    def _exit(self, exc: BaseException | None) -> None:
        self._end = time.monotonic()
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join(timeout=2)
        assert self._session is not None and self._price is not None and self._frame_in is not None
        attributes: dict[str, Any] = {}
        if self._samples:
            attributes["gpu_util_avg"] = round(sum(self._samples) / len(self._samples), 1)
            attributes["gpu_util_samples"] = len(self._samples)
        self.event = _record(self._session, self._frame_in, "gpu", self._price, self.seconds, self.count, self.name,
                             self.node, attributes)


def gpu_job(sku: str, *, count: int = 1, name: str | None = None, session: Session | None = None,
            sample_interval: float = 5.0) -> GpuJob:
    """A GPU job on `count` units of `sku` (context manager or decorator)."""
    return GpuJob(sku, count, name, session, sample_interval)


def _start_sampler(samples: list[float], stop: threading.Event, interval: float) -> threading.Thread | None:
    """Average GPU utilisation via NVML, when pynvml is installed and a GPU is present."""
    try:
        nvml: Any = importlib.import_module("pynvml")
        nvml.nvmlInit()
        handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
    except Exception:  # no pynvml, no driver or no GPU: nothing to sample
        return None
    if not handles:
        return None

    def loop() -> None:
        try:
            while not stop.wait(interval):
                rates = [nvml.nvmlDeviceGetUtilizationRates(h).gpu for h in handles]
                samples.append(sum(rates) / len(rates))
        finally:
            nvml.nvmlShutdown()

    thread = threading.Thread(target=loop, name="costplane-nvml", daemon=True)
    thread.start()
    return thread
