"""costplane: an AI FinOps control plane — governed LLM gateway, budgets, policy-as-code, attribution."""

__version__ = "0.1.0"

__all__ = ["__version__"]
