"""`costplane demo`: the product working end to end on one machine, offline.

It starts the upstream simulator and the governed gateway, mints keys for a few personas
(support bot, ML experiments, a research agent, a growth team, a knowledge-base indexer),
drives a mixed workload through the gateway with the official SDKs of every protocol it serves
(openai, anthropic, openai-agents, google-genai, boto3, Azure OpenAI) and
shows live what costplane attributed, rerouted, cached and denied. See docs/demo.md.

The SDKs are optional dependencies (`pip install 'costplane[demo]'`); nothing here imports them
until `run_demo` is used, so `import costplane.demo` always works.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["DemoOptions", "DemoResult", "missing_dependencies", "run_demo"]

#: The import name of each package the demo needs beyond costplane's own dependencies.
DEMO_DEPENDENCIES = ("openai", "anthropic", "agents", "google.genai", "boto3")

if TYPE_CHECKING:
    from costplane.demo.runner import DemoOptions, DemoResult, run_demo


def missing_dependencies() -> list[str]:
    """The demo's optional packages that are not installed."""
    from importlib.util import find_spec

    def missing(name: str) -> bool:
        try:
            return find_spec(name) is None
        except ModuleNotFoundError:  # the parent package (google) is not installed either
            return True

    return [name for name in DEMO_DEPENDENCIES if missing(name)]


def __getattr__(name: str) -> Any:
    if name in ("DemoOptions", "DemoResult", "run_demo"):
        from costplane.demo import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'costplane.demo' has no attribute {name!r}")
