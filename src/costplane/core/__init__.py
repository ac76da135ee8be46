"""The decision core: one decider every hook goes through, and its adapters."""

from costplane.core.decider import Decider, DryRun, Evaluation, Hold, Refused, Reserved
from costplane.core.decision import DecisionCore
from costplane.core.requests import Admission, Denial, LlmRequest, Settlement

__all__ = ["Admission", "Decider", "DecisionCore", "Denial", "DryRun", "Evaluation", "Hold", "LlmRequest", "Refused",
           "Reserved", "Settlement"]
