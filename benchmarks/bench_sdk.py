"""SDK overhead per instrumented call (target ≤ 50 µs), without the network.

    .venv/bin/python benchmarks/bench_sdk.py            # 20,000 calls per scenario

The wrapper the SDK installs on `chat.completions.create` (costplane.sdk.instrument) is put
around a stand-in `create` that returns a real `openai` ChatCompletion object at once, so the
time measured is only what costplane adds: reading the context, the run guard (worst-case
bound with the gateway's token bound and the Catalog price), propagation headers (gateway
mode) or metering, pricing and recording the cost event (direct mode, buffered; the
background writer runs during the measurement). Scenarios:

* gateway mode, inside `costplane.context(...)`                         — headers only
* gateway mode, inside a budgeted `agent_run` + a step                  — + guard
* direct mode, inside a budgeted `agent_run` + a step, SQLite session    — + meter, price, record
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from openai.types.chat import ChatCompletion

import costplane
from costplane.sdk.calls import OPENAI
from costplane.sdk.instrument import _wrap

N = 20_000
MESSAGES = [{"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": "Where is my parcel? It was due on Monday."}]
REPLY = ChatCompletion.model_validate({
    "id": "c1", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "On its way."}}],
    "usage": {"prompt_tokens": 31, "completion_tokens": 5, "total_tokens": 36}})


def bare(**kwargs: Any) -> ChatCompletion:
    return REPLY


def measure(create: Any, n: int = N) -> float:
    for _ in range(500):
        create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=64)
    started = time.perf_counter()
    for _ in range(n):
        create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=64)
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    base = measure(bare)
    print(f"bare stand-in create: {base:.2f} µs per call")
    with tempfile.TemporaryDirectory() as tmp, costplane.Session(f"sqlite:///{tmp}/sdk.db") as session:
        session.catalog.resolve("gpt-4o-mini", "openai")  # load the catalog outside the measurement
        gateway = _wrap(bare, OPENAI, "gateway", None, False)
        direct = _wrap(bare, OPENAI, "direct", session, False)
        with costplane.context(team="support", tier="production"):
            print(f"gateway mode, context only:        {measure(gateway) - base:6.2f} µs added per call")
        with session.agent_run("bench-bot", budget_usd=1_000_000, max_steps=10**9), costplane.step("answer"):
            print(f"gateway mode, budgeted run + step:  {measure(gateway) - base:6.2f} µs added per call")
            print(f"direct mode, budgeted run + step:   {measure(direct) - base:6.2f} µs added per call")
        session.flush()
        events = session.recorder.store.count_events()  # type: ignore[attr-defined]
        print(f"({events:,} cost events recorded by the direct-mode run)")


if __name__ == "__main__":
    main()
