"""Run trees, outcomes and unit economics: built from the ledger (cost events, run nodes, outcomes)."""

from costplane.runs.report import OutcomeRow, cost_per_outcome
from costplane.runs.tree import TreeNode, build_tree, list_runs

__all__ = ["OutcomeRow", "TreeNode", "build_tree", "cost_per_outcome", "list_runs"]
