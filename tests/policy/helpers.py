"""Helpers for writing small bundles in tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

from costplane.policy.bundle import load_bundle
from costplane.policy.types import BundleError, ValidationIssue

__all__ = ["issues", "write"]


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def issues(root: Path) -> list[ValidationIssue]:
    try:
        load_bundle(root)
    except BundleError as exc:
        return exc.issues
    raise AssertionError("the bundle loaded without issues")


def find(found: list[ValidationIssue], field: str) -> ValidationIssue:
    matches = [i for i in found if i.field == field]
    assert matches, f"no issue for {field!r} in {[str(i) for i in found]}"
    return matches[0]
