"""Waste detectors: one module per detector, each `detect(history, inputs) -> list[Finding]`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from costplane.optimize.detectors import (
    amplification,
    cache,
    chatter,
    embeddings,
    gpus,
    inflation,
    leakage,
    oversizing,
)
from costplane.optimize.detectors.gpus import EnvironmentHistory
from costplane.optimize.detectors.prefetch import prefetch
from costplane.optimize.detectors.source import source_of
from costplane.optimize.findings import DetectorInput, Finding
from costplane.optimize.history import History

__all__ = ["DETECTORS", "ENVIRONMENT_DETECTORS", "Detector", "EnvironmentDetector", "run_detectors"]

Detector = Callable[[History, DetectorInput], list[Finding]]
#: detectors over the environment records (`gpus.load_environments`), not the request history
EnvironmentDetector = Callable[[EnvironmentHistory], list[Finding]]

#: name -> detector, in the order they run
DETECTORS: dict[str, Detector] = {
    oversizing.NAME: oversizing.detect,
    cache.NAME: cache.detect,
    inflation.NAME: inflation.detect,
    amplification.NAME: amplification.detect,
    chatter.NAME: chatter.detect,
    leakage.NAME: leakage.detect,
    embeddings.NAME: embeddings.detect,
}

#: name -> environment detector; they run when `run_detectors` is given the environments
ENVIRONMENT_DETECTORS: dict[str, EnvironmentDetector] = {
    gpus.IDLE: gpus.detect_idle,
    gpus.OVERSIZED: gpus.detect_oversized,
}


def run_detectors(history: History, inputs: DetectorInput, names: Sequence[str] = (),
                  environments: EnvironmentHistory | None = None) -> list[Finding]:
    """Every (or the named) detector's findings, largest monthly saving first.

    The environment detectors run only when `environments` is given.
    """
    known = [*DETECTORS, *ENVIRONMENT_DETECTORS]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown detector {unknown[0]!r}; known: {', '.join(known)}")
    selected = [name for name in DETECTORS if not names or name in names]
    prefetch(source_of(history), selected)  # a store's independent heavy reads, on a second thread
    findings = [f for name in selected for f in DETECTORS[name](history, inputs)]
    if environments is not None:
        findings += [f for name, detect_env in ENVIRONMENT_DETECTORS.items() if not names or name in names
                     for f in detect_env(environments)]
    return sorted(findings, key=lambda f: (-f.monthly_saving_nano, f.detector, f.title))
