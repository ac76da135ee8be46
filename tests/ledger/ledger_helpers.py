"""Record builders and the worker code the store tests run in threads, processes and a
crashing subprocess (`python ledger_helpers.py crash URL N`)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from costplane.attribution.context import Context
from costplane.ledger import (
    BudgetClaim,
    CostEvent,
    DecisionRecord,
    Reservation,
    ReserveResult,
    Store,
    open_store,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def claim(budget: str = "b", amount: int = 1000, **kw: object) -> BudgetClaim:
    values: dict[str, object] = {"partition": "", "bucket": 0, "window_start": 0}
    values.update(kw)
    return BudgetClaim(budget=budget, amount_nano=amount, **values)  # type: ignore[arg-type]


def decision(did: str | None = None, *, effect: str = "allow", ts: datetime = NOW,
             ctx: Context | None = None) -> DecisionRecord:  # fmt: skip
    return DecisionRecord(
        id=did or f"d-{uuid.uuid4().hex}", ts=ts, hook="llm.request", effect=effect,
        bundle_revision="sha256:test", context=ctx or Context(team="ml"),
        input={"model": "gpt-4o", "input_tokens": 10}, result={"effect": effect},
        policies=("p1",), budgets=("b",), reason="because", key_id="k1", status_code=200,
    )  # fmt: skip


def reservation(claims: Sequence[BudgetClaim], *, rid: str | None = None, at: datetime = NOW,
                ttl: timedelta = timedelta(minutes=5)) -> Reservation:  # fmt: skip
    return Reservation(id=rid or f"r-{uuid.uuid4().hex}", claims=tuple(claims), created_at=at,
                       expires_at=at + ttl, decision_id=f"d-{uuid.uuid4().hex}")  # fmt: skip


def reserve(store: Store, claims: Sequence[BudgetClaim], **kw: object) -> tuple[Reservation, ReserveResult]:
    res = reservation(claims, **kw)  # type: ignore[arg-type]
    return res, store.reserve(res, decision(res.decision_id))


def event(cost: int, *, eid: str | None = None, ts: datetime = NOW, ctx: Context | None = None,
          rid: str | None = None, **kw: object) -> CostEvent:  # fmt: skip
    values: dict[str, object] = {"provider": "openai", "model": "gpt-4o"}
    values.update(kw)
    return CostEvent(id=eid or f"e-{uuid.uuid4().hex}", ts=ts, context=ctx or Context(team="ml"),
                     cost_nano=cost, reservation_id=rid, **values)  # type: ignore[arg-type]  # fmt: skip


def hammer(
    url: str, limit: int, amount: int, attempts: int, threads: int, start_at: float
) -> tuple[int, int]:
    """Open a store and run `attempts` reserve→settle cycles from `threads` threads against
    one hard budget. Returns (settled, highest spent+reserved any reserve saw)."""
    store = open_store(url)
    settled = [0]
    highest = [0]
    lock = threading.Lock()
    per_thread = [attempts // threads + (1 if i < attempts % threads else 0) for i in range(threads)]

    def work(n: int) -> None:
        for _ in range(n):
            res, result = reserve(store, [claim("shared", amount, limit_nano=limit)])
            if not result.ok:
                continue
            state = result.states[0]
            with lock:
                highest[0] = max(highest[0], state.spent_nano + state.reserved_nano)
            store.settle(res.id, event(amount, rid=res.id))
            with lock:
                settled[0] += 1

    time.sleep(max(0.0, start_at - time.time()))
    workers = [threading.Thread(target=work, args=(n,)) for n in per_thread]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    store.close()
    return settled[0], highest[0]


def crash(url: str, n: int) -> None:
    """Settle n events of 7 nano each, leave two reservations open, then SIGKILL ourselves."""
    store = open_store(url)
    store.migrate()
    for i in range(n):
        res, result = reserve(store, [claim("crash", 10)], rid=f"r-crash-{i}")
        assert result.ok
        store.settle(res.id, event(7, eid=f"e-crash-{i}", rid=res.id))
    for i in range(2):
        reserve(store, [claim("crash", 10)], rid=f"r-open-{i}")
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":  # pragma: no cover - run as a subprocess
    if sys.argv[1] == "crash":
        crash(sys.argv[2], int(sys.argv[3]))
