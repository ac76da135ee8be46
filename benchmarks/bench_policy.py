"""Policy decision latency for a 50-policy bundle (target: p99 <= 100 µs).

    .venv/bin/python benchmarks/bench_policy.py [--policies 50] [--budgets 10] [--iterations 20000]

Writes a synthetic bundle (policies of every effect, budgets with scopes) to a
temporary directory, loads it like the server does, and times
`PolicyEngine.decide` for a mix of requests. Prints p50/p99/mean in µs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from costplane.attribution.context import Context
from costplane.policy.bundle import load_bundle
from costplane.policy.engine import PolicyEngine

EFFECTS = ("route", "deny", "mutate", "notify", "allow")


def write_bundle(root: Path, policies: int, budgets: int) -> None:
    docs: list[str] = []
    for i in range(policies):
        effect = EFFECTS[i % len(EFFECTS)]
        when = (
            f'ctx.tier == "experiment" && request.model == "model-{i}" && request.input_tokens < {1000 + i}'
            if effect != "notify"
            else f"request.input_tokens > {20000 + i}"
        )
        extra = {
            "route": f"set: {{model: gpt-4o-mini}}\npriority: {i}\n",
            "mutate": f"set: {{max_tokens: {512 + i}}}\n",
        }.get(effect, "")
        docs.append(f"kind: Policy\nname: p{i}\non: llm.request\nwhen: '{when}'\neffect: {effect}\n{extra}")
    for i in range(budgets):
        docs.append(
            f'kind: Budget\nname: b{i}\nscope: \'ctx.team == "team-{i}" || ctx.agent != ""\'\n'
            f"amount: {i + 1} USD\nper: [run]\nwindow: {{rolling: 1h}}\n"
        )
    (root / "bench.yaml").write_text("---\n".join(docs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--policies", type=int, default=50)
    parser.add_argument("--budgets", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_bundle(root, args.policies, args.budgets)
        started = time.perf_counter()
        bundle = load_bundle(root)
        load_ms = (time.perf_counter() - started) * 1000
    engine = PolicyEngine(bundle)
    contexts = [
        Context(team="ml", tier="experiment", agent="research-agent", run="r-1", tags={"env": "dev"}),
        Context(team="support", tier="production", key_id="k-1"),
        Context(team="team-3", tier="experiment"),
    ]
    requests = [
        {"model": "model-10", "provider": "openai", "input_tokens": 500, "max_tokens": 2048, "stream": True},
        {
            "model": "gpt-4o",
            "provider": "openai",
            "input_tokens": 30000,
            "max_tokens": None,
            "temperature": 0.2,
        },
        {"model": "model-0", "endpoint": "chat", "input_tokens": 10},
    ]
    for _ in range(2000):  # warm up
        engine.decide("llm.request", contexts[0], requests[0])
    samples: list[float] = []
    clock = time.perf_counter_ns
    for i in range(args.iterations):
        ctx, request = contexts[i % 3], requests[(i // 3) % 3]
        t0 = clock()
        engine.decide("llm.request", ctx, request)
        samples.append((clock() - t0) / 1000)
    samples.sort()
    p50 = samples[len(samples) // 2]
    p99 = samples[int(len(samples) * 0.99) - 1]
    print(
        f"policy decide: {args.policies} policies, {args.budgets} budgets, {args.iterations} decisions "
        f"(bundle loaded in {load_ms:.1f} ms)"
    )
    print(
        f"p50 {p50:.1f} µs  p99 {p99:.1f} µs  mean {statistics.fmean(samples):.1f} µs"
        f"  max {samples[-1]:.1f} µs"
    )
    print(f"target p99 <= 100 µs: {'met' if p99 <= 100 else 'NOT met'}")


if __name__ == "__main__":
    main()
