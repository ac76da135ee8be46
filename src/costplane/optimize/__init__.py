"""AI-aware optimization: policy replay, waste detectors, capability assessment, synthetic history."""

from __future__ import annotations

from costplane.optimize.assess import Assessment, assess, observe
from costplane.optimize.detectors import DETECTORS, run_detectors
from costplane.optimize.findings import DetectorInput, Finding
from costplane.optimize.history import History, load_history, parse_since
from costplane.optimize.replay import ReplayReport, replay

__all__ = ["DETECTORS", "Assessment", "DetectorInput", "Finding", "History", "ReplayReport", "assess",
           "load_history", "observe", "parse_since", "replay", "run_detectors"]
