"""Session: where the SDK sends what it records, the prices it uses, and (with a store) how a
direct-mode call is admitted.

A Session owns a recorder — a local store (`Session("sqlite:///costplane.db", bundle="policies/")`,
the same ledger the server uses, recorded through the same decision core: bundle budgets, observed
decisions, alerts), or the server's API (`Session(api_url=…, api_key="cpk_…")`) — and the pricing
`Catalog`. Recording is buffered: the hot path appends to a list, a
background thread writes batches (one transaction each), and `flush()` (called when a
run ends, and by `close()`) waits until everything recorded so far is stored.

`admit_llm` decides a direct-mode call through the same decision core as the gateway BEFORE it is
made — the bundle's policies and budgets, one atomic reservation of its worst case,
`gateway.default_max_tokens`, the configured pricing provider — in process with a store, or by the
server (`POST /v1/runs/admit`) with an API session; `settle_llm` / `release_llm` end it (the cost
event is written by the settlement, priced by that core, with alerts).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from costplane.attribution.context import Context
from costplane.config import ProviderConfig
from costplane.core.requests import Admission, Denial, LlmRequest, Settlement
from costplane.ledger.runtypes import OutcomeRecord, RunNode
from costplane.ledger.store import Store
from costplane.ledger.types import CostEvent, Reservation
from costplane.pricing.catalog import Catalog
from costplane.pricing.config import PricingConfig
from costplane.pricing.types import TokenUsage
from costplane.pricing.usagecodec import usage_to_json
from costplane.sdk.guards import SpendRefused

if TYPE_CHECKING:  # the composition root is imported only when a store is recorded into
    from costplane.app import Application

__all__ = ["ApiRecorder", "Recorder", "Session", "StoreRecorder"]

log = logging.getLogger("costplane.sdk")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Recorder(Protocol):
    def write(self, nodes: Sequence[RunNode], events: Sequence[CostEvent], outcomes: Sequence[OutcomeRecord]) -> None:
        """Store one batch (idempotent by id)."""

    def close(self) -> None: ...


class StoreRecorder:
    """Writes into a ledger store (SQLite or PostgreSQL URL, or an open Store) through the decision
    core: cost events are spend observed after the fact (hook `spend.record`), counted against every
    matching budget of the bundle, logged as `observed` decisions and alerted on, like the server does.

    `application`: the composition root to record through (its store, bundle and notifier, webhooks
    included); otherwise one is built over `store` with the bundle at `bundle` (None: no budgets)."""

    def __init__(self, store: Store | str | None = None, *, bundle: str | Path | None = None,
                 application: Application | None = None) -> None:
        self._owned = False
        if application is None:
            from costplane.app import Application
            from costplane.config import parse_config

            if store is None:
                raise ValueError("StoreRecorder needs a store (URL or Store) or an application")
            data: dict[str, Any] = {"bundle": str(bundle) if bundle is not None else None}
            if isinstance(store, str):
                data["store"] = store
                application = Application(parse_config(data))
                self._owned = True
            else:
                application = Application(parse_config(data), store=store)
        self.application = application
        self.store = application.store

    def write(self, nodes: Sequence[RunNode], events: Sequence[CostEvent], outcomes: Sequence[OutcomeRecord]) -> None:
        if nodes:
            self.store.record_nodes(nodes, ())
        if events:
            self.application.core.record_spend(events, "sdk")
        for outcome in outcomes:
            self.store.record_outcome(outcome)

    def close(self) -> None:
        if self._owned:
            self.application.close()


class ApiRecorder:
    """Posts batches to a costplane server: `POST /v1/runs/ingest` with a costplane key."""

    def __init__(self, api_url: str, api_key: str, timeout: float = 10.0) -> None:
        import httpx

        self._client = httpx.Client(base_url=api_url.rstrip("/"), timeout=timeout,
                                    headers={"authorization": f"Bearer {api_key}"})

    def write(self, nodes: Sequence[RunNode], events: Sequence[CostEvent], outcomes: Sequence[OutcomeRecord]) -> None:
        from costplane.runs.wire import batch_to_json

        response = self._client.post("/v1/runs/ingest", content=orjson.dumps(batch_to_json(nodes, events, outcomes)),
                                     headers={"content-type": "application/json"})
        if response.status_code >= 300:
            raise RuntimeError(f"costplane API refused a batch: HTTP {response.status_code}: {response.text[:300]}")

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST one admission call (`/v1/runs/admit|settle|release`); a refusal raises SpendRefused."""
        response = self._client.post(path, content=orjson.dumps(body), headers={"content-type": "application/json"})
        payload = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code >= 300:  # {"error": {code, message, field, decision_id, …}}
            found = payload.get("error") if isinstance(payload, dict) else None
            error: dict[str, Any] = found if isinstance(found, dict) else {}
            code = str(error.get("code") or f"http_{response.status_code}")
            decision = error.get("decision_id")
            message = str(error.get("message") or response.text[:300])
            if decision is None and response.status_code < 500 and code != "spend_unverifiable":
                raise RuntimeError(f"costplane API refused {path}: HTTP {response.status_code} {code}: {message}")
            context = body.get("context")
            run = context.get("run") if isinstance(context, dict) else None
            raise SpendRefused(str(run or ""), code, message, str(decision) if decision else None)
        return payload if isinstance(payload, dict) else {}

    def close(self) -> None:
        self._client.close()


class Session:
    """Where the SDK records (store or API) and how it prices (the Catalog); no global state."""

    def __init__(self, store: Store | str | None = None, *, api_url: str | None = None, api_key: str | None = None,
                 pricing: PricingConfig | None = None, catalog: Catalog | None = None,
                 clock: Callable[[], datetime] = _utcnow, flush_interval: float = 0.2,
                 bundle: str | Path | None = None, application: Application | None = None) -> None:
        if store is not None or application is not None:
            self.recorder: Recorder = StoreRecorder(store, bundle=bundle, application=application)
        elif api_url is not None and api_key is not None:
            self.recorder = ApiRecorder(api_url, api_key)
        else:
            raise ValueError("Session needs a store (URL or Store), an application, or api_url and api_key")
        self._pricing = pricing
        if catalog is None and pricing is None and isinstance(self.recorder, StoreRecorder):
            catalog = self.recorder.application.catalog  # the recording application's prices
        self._catalog = catalog
        self.clock = clock
        self._lock = threading.Lock()
        self._written = threading.Condition(self._lock)
        self._pending: tuple[list[RunNode], list[CostEvent], list[OutcomeRecord]] = ([], [], [])
        self._interval = flush_interval
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._busy = False
        self.errors: list[str] = []  # batches that could not be written (also logged)

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog.load(self._pricing)
        return self._catalog

    # -- admission (direct mode) ------------------------------------------------------------
    @property
    def admits(self) -> bool:
        """True: direct-mode calls are admitted by a decision core before they are made (always: the
        store's own, or the server's over its API)."""
        return isinstance(self.recorder, StoreRecorder | ApiRecorder)

    def admit_llm(self, ctx: Context, request: LlmRequest, *, tool_uses: dict[str, int] | None = None) -> Admission:
        """Admit a direct-mode call (hook llm.request) or raise SpendRefused. Send `admission.model`
        with `admission.max_tokens` (the server's default when the call sets none)."""
        if isinstance(self.recorder, ApiRecorder):
            return self._admit_remote(self.recorder, ctx, request, tool_uses or {})
        if not isinstance(self.recorder, StoreRecorder):
            raise RuntimeError("this session's recorder admits no calls")
        got = self.recorder.application.core.admit_direct(ctx, request, tool_uses=tool_uses)
        if isinstance(got, Denial):
            raise SpendRefused(ctx.run or "", got.code, got.message, got.decision_id)
        return got

    def settles(self, admission: Admission) -> bool:
        """True when `settle_llm` writes the admitted call's cost event: always with a store; over the
        API when the server held a reservation (none only when its store was down and the budgets
        fail open: the call is then recorded as spend observed after the fact, like without admission)."""
        return isinstance(self.recorder, StoreRecorder) or (
            isinstance(self.recorder, ApiRecorder) and admission.reservation is not None)

    def settle_llm(self, admission: Admission, usage: TokenUsage, *, status: str = "ok",
                   latency_ms: int = 0) -> Settlement:
        """The call's usage: its cost event is written now, against the reservation (and alerted on)."""
        if isinstance(self.recorder, ApiRecorder):
            if admission.reservation is None:
                raise RuntimeError("the server admitted this call without a reservation; nothing to settle")
            done = self.recorder.call("/v1/runs/settle", {
                "reservation_id": admission.reservation.id, "request": _wire_request(admission.request),
                "model": admission.model, "usage": usage_to_json(usage), "status": status,
                "latency_ms": latency_ms, "context": _wire_context(admission.context)})
            return Settlement(str(done.get("event_id", "")), int(done.get("cost_nano") or 0), None)
        if not isinstance(self.recorder, StoreRecorder):
            raise RuntimeError("this session's recorder admits no calls")
        return self.recorder.application.core.settle(admission, usage, status=status, latency_ms=latency_ms)

    def release_llm(self, admission: Admission) -> None:
        """The call failed before anything was spent: give its reservation back."""
        if isinstance(self.recorder, ApiRecorder):
            if admission.reservation is not None:
                self.recorder.call("/v1/runs/release", {"reservation_id": admission.reservation.id})
        elif isinstance(self.recorder, StoreRecorder):
            self.recorder.application.core.release(admission)

    def _admit_remote(self, recorder: ApiRecorder, ctx: Context, request: LlmRequest,
                      tool_uses: dict[str, int]) -> Admission:
        """The server's decision core admits the call; the admission is rebuilt here with this
        session's prices (the server prices the settlement itself)."""
        body: dict[str, Any] = {"request": _wire_request(request), "context": _wire_context(ctx)}
        if tool_uses:
            body["tool_uses"] = dict(tool_uses)
        got = recorder.call("/v1/runs/admit", body)
        pricing = str(got.get("pricing_provider") or request.protocol)
        model = str(got.get("model") or request.model)
        provider = ProviderConfig(name=str(got.get("provider") or pricing), type=request.protocol, base_url="",
                                  pricing_provider=pricing)
        now = self.clock()
        reserved = got.get("reservation_id")
        reservation = Reservation(str(reserved), (), now, now, str(got["decision_id"])) if reserved else None
        try:
            price = self.catalog.resolve(model, pricing, now)
        except LookupError:  # routed to a model this session has no price for: nothing is sent, nothing held
            if reservation is not None:
                recorder.call("/v1/runs/release", {"reservation_id": reservation.id})
            raise
        return Admission(str(got["decision_id"]), str(got.get("effect") or "allow"), ctx, request, provider, model,
                         int(got.get("max_tokens") or 0), {}, price, reservation,
                         (), int(got.get("reserved_nano") or 0), str(got.get("reason") or ""))

    # -- recording ---------------------------------------------------------------------
    def record(self, nodes: Sequence[RunNode] = (), events: Sequence[CostEvent] = (),
               outcomes: Sequence[OutcomeRecord] = ()) -> None:
        with self._lock:
            self._pending[0].extend(nodes)
            self._pending[1].extend(events)
            self._pending[2].extend(outcomes)
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._loop, name="costplane-sdk-recorder", daemon=True)
                self._thread.start()

    def flush(self) -> None:
        """Write everything recorded so far, now, in this thread."""
        with self._lock:
            while self._busy:
                self._written.wait(5.0)
            self._busy = True
            batch, self._pending = self._pending, ([], [], [])
        try:
            self._write(batch)
        finally:
            with self._lock:
                self._busy = False
                self._written.notify_all()

    def _write(self, batch: tuple[list[RunNode], list[CostEvent], list[OutcomeRecord]]) -> None:
        if not any(batch):
            return
        try:
            self.recorder.write(*batch)
        except Exception as exc:
            message = f"costplane SDK could not record {len(batch[0])} nodes, {len(batch[1])} events: {exc}"
            log.error(message)
            self.errors.append(message)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.flush()
        self.recorder.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def activate(self) -> Any:
        """A scope (context manager or decorator) inside which runs, outcomes and direct-mode
        clients use this session without being passed it."""
        from costplane.sdk.context import SessionScope

        return SessionScope(self)

    # -- conveniences: the same as the module functions with session=self -------------------
    def agent_run(self, name: str, **kwargs: Any) -> Any:
        from costplane.sdk.runs import agent_run

        return agent_run(name, session=self, **kwargs)

    def pipeline_run(self, name: str, **kwargs: Any) -> Any:
        from costplane.sdk.runs import pipeline_run

        return pipeline_run(name, session=self, **kwargs)

    def instrument(self, client: Any, mode: str = "direct") -> Any:
        from costplane.sdk.instrument import instrument

        return instrument(client, mode=mode, session=self)


def _wire_request(request: LlmRequest) -> dict[str, Any]:
    out: dict[str, Any] = {"protocol": request.protocol, "endpoint": request.endpoint, "model": request.model,
                           "input_tokens_bound": request.input_bound, "input_tokens_estimate": request.input_estimate,
                           "stream": request.stream}
    if request.max_tokens is not None:
        out["max_tokens"] = request.max_tokens
    return out


def _wire_context(ctx: Context) -> dict[str, str]:
    return {**ctx.dimensions(), **{str(k): str(v) for k, v in ctx.tags.items()}}
