"""Policy-as-code: bundle loading and validation, the CEL policy engine, `policy test`."""

from costplane.policy.bundle import Bundle, load_bundle
from costplane.policy.engine import PolicyEngine
from costplane.policy.revision import bundle_revision
from costplane.policy.testing import TestResult, run_tests
from costplane.policy.types import (
    BudgetSpec,
    BundleError,
    MatchedPolicy,
    PolicyDecision,
    PolicySpec,
    PolicyTestCase,
    SourceLocation,
    ValidationIssue,
)

__all__ = [
    "BudgetSpec",
    "Bundle",
    "BundleError",
    "MatchedPolicy",
    "PolicyDecision",
    "PolicyEngine",
    "PolicySpec",
    "PolicyTestCase",
    "SourceLocation",
    "TestResult",
    "ValidationIssue",
    "bundle_revision",
    "load_bundle",
    "run_tests",
]
