"""Detectors and policy replay over a synthetic history (in memory; the store read is timed separately).

    .venv/bin/python benchmarks/bench_optimize.py [--scale N]

`--scale N` multiplies the seeded synthetic history (~8.6k requests per unit, all six
planted patterns) N times.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from costplane.optimize.detectors import run_detectors
from costplane.optimize.findings import DetectorInput
from costplane.optimize.history import History
from costplane.optimize.replay import replay
from costplane.optimize.synthetic import SyntheticSpec, generate, synthetic_config
from costplane.policy.bundle import load_bundle
from costplane.pricing.catalog import Catalog


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=100)
    args = parser.parse_args()
    catalog, config = Catalog.load(), synthetic_config()
    spec = SyntheticSpec.all_patterns(
        control_calls=600 * args.scale, oversized_calls=1000 * args.scale, faq_questions=40 * args.scale,
        inflation_calls=800 * args.scale, amplification_runs=300 * args.scale, chatter_runs=200 * args.scale,
        leaked_calls=600 * args.scale)
    started = time.perf_counter()
    synthetic = generate(spec, catalog)
    history = History.build(synthetic.start, synthetic.end, synthetic.decisions, synthetic.events)
    generated = time.perf_counter() - started
    n = len(history.requests)
    started = time.perf_counter()
    findings = run_detectors(history, DetectorInput(config, catalog))
    detect = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        for finding in findings:
            (Path(tmp) / f"{finding.detector}.yaml").write_text(finding.document)
        bundle = load_bundle(tmp)
        started = time.perf_counter()
        report = replay(history, bundle, config, catalog)
        replayed = time.perf_counter() - started
    print(f"events/requests: {n:,} (generated in {generated:.1f}s)")
    print(f"detectors: {detect:.2f}s ({n / detect:,.0f} events/s) -> extrapolated 10M: {10e6 / n * detect:.0f}s")
    print(f"replay: {replayed:.2f}s ({n / replayed:,.0f} requests/s) -> extrapolated 1M: {1e6 / n * replayed:.0f}s")
    print(f"findings: {len(findings)}; replay changed {len(report.changes):,}, saved {report.saved_nano:,} nano-USD")


if __name__ == "__main__":
    main()
