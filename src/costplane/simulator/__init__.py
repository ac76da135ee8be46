"""The offline upstream simulator: an OpenAI- and Anthropic-compatible HTTP server.

It is a *simulator*, not a provider: answers are deterministic filler text, token counts follow
`costplane.simulator.tokens`, and faults can be injected. See docs/simulator.md.
"""

from __future__ import annotations

from costplane.simulator.app import create_app, simulator_state
from costplane.simulator.config import SimulatorConfig
from costplane.simulator.state import SimulatorState
from costplane.simulator.tokens import PER_MESSAGE_OVERHEAD, REPLY_PRIMING, count_tokens

__all__ = [
    "PER_MESSAGE_OVERHEAD",
    "REPLY_PRIMING",
    "SimulatorConfig",
    "SimulatorState",
    "count_tokens",
    "create_app",
    "simulator_state",
]
