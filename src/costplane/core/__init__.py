"""The decision core: every enforcement point admits, settles and releases through it."""

from costplane.core.decision import DecisionCore
from costplane.core.requests import Admission, Denial, LlmRequest, Settlement

__all__ = ["Admission", "DecisionCore", "Denial", "LlmRequest", "Settlement"]
