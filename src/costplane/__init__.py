"""costplane: an AI FinOps control plane — governed LLM gateway, budgets, policy-as-code, attribution."""

__version__ = "0.1.0"

__all__ = ["__version__"]

# The SDK (costplane.sdk), importable as `costplane.context(...)`, `costplane.agent_run(...)`, …;
# loaded on first use so that `import costplane` stays cheap.
_SDK = ("BudgetExceeded", "ContextPool", "GuardError", "Session", "StepLimitExceeded", "ToolLimitExceeded",
        "agent_run", "context", "current_context", "gpu_job", "instrument", "outcome", "pipeline_run",
        "resource_cost", "run_in_thread", "step", "tool", "wrap")


def __getattr__(name: str) -> object:
    if name in _SDK:
        from costplane import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'costplane' has no attribute {name!r}")
