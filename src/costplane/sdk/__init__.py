"""The costplane SDK: attribution context, guarded agent and pipeline runs, tool steps,
outcomes, GPU/resource cost, and instrumentation of the OpenAI and Anthropic clients.
The same names are importable from `costplane` itself (lazily)."""

from costplane.sdk.context import ContextPool, context, current_context, run_in_thread, wrap
from costplane.sdk.guards import BudgetExceeded, GuardError, StepLimitExceeded, ToolLimitExceeded
from costplane.sdk.instrument import instrument
from costplane.sdk.outcomes import outcome
from costplane.sdk.resources import gpu_job, resource_cost
from costplane.sdk.runs import RunHandle, agent_run, pipeline_run, step
from costplane.sdk.session import Session
from costplane.sdk.tools import tool

__all__ = [
    "BudgetExceeded",
    "ContextPool",
    "GuardError",
    "RunHandle",
    "Session",
    "StepLimitExceeded",
    "ToolLimitExceeded",
    "agent_run",
    "context",
    "current_context",
    "gpu_job",
    "instrument",
    "outcome",
    "pipeline_run",
    "resource_cost",
    "run_in_thread",
    "step",
    "tool",
    "wrap",
]
