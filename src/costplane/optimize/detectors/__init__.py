"""Waste detectors: one module per detector, each `detect(history, inputs) -> list[Finding]`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from costplane.optimize.detectors import amplification, cache, chatter, inflation, leakage, oversizing
from costplane.optimize.findings import DetectorInput, Finding
from costplane.optimize.history import History

__all__ = ["DETECTORS", "Detector", "run_detectors"]

Detector = Callable[[History, DetectorInput], list[Finding]]

#: name -> detector, in the order they run
DETECTORS: dict[str, Detector] = {
    oversizing.NAME: oversizing.detect,
    cache.NAME: cache.detect,
    inflation.NAME: inflation.detect,
    amplification.NAME: amplification.detect,
    chatter.NAME: chatter.detect,
    leakage.NAME: leakage.detect,
}


def run_detectors(history: History, inputs: DetectorInput, names: Sequence[str] = ()) -> list[Finding]:
    """Every (or the named) detector's findings, largest monthly saving first."""
    unknown = [n for n in names if n not in DETECTORS]
    if unknown:
        raise ValueError(f"unknown detector {unknown[0]!r}; known: {', '.join(DETECTORS)}")
    findings = [f for name, detect in DETECTORS.items() if not names or name in names
                for f in detect(history, inputs)]
    return sorted(findings, key=lambda f: (-f.monthly_saving_nano, f.detector, f.title))
