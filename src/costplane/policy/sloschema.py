"""Validation of `kind: SLO` documents: economic service-level objectives.

```yaml
kind: SLO
name: support-cost-per-ticket
outcome: ticket_resolved           # the outcome type it is about
objective: 0.12 USD                # the most one outcome may cost
window: {rolling: 1d}              # measured over the last day (rolling windows only)
scope: {agent: support-bot}        # optional: dimension -> value the SLO covers
min_outcomes: 5                    # optional: judge only once this many outcomes (default 1)
```

Cost per outcome = cost of every run in scope during the window (runs without outcomes
included) / outcomes. With fewer than `min_outcomes` outcomes it is breached only when the
cost already exceeds `objective × min_outcomes`. A breach fires hook `slo.breach`; see core/slo.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from costplane.attribution.context import DIMENSIONS, InvalidAttribute, validate_value
from costplane.ledger.windows import WindowError, parse_duration
from costplane.money import MoneyError, parse_usd
from costplane.policy.checks import DocChecker, check_name, describe
from costplane.policy.types import SourceLocation
from costplane.policy.yamlsource import YMap, YScalar

__all__ = ["SLO_KEYS", "LoadedSlo", "SloSpec", "validate_slo"]

SLO_KEYS = ("kind", "name", "description", "outcome", "objective", "window", "scope", "min_outcomes")
SCOPE_DIMENSIONS: tuple[str, ...] = (*DIMENSIONS, "model")


@dataclass(frozen=True, slots=True)
class SloSpec:
    name: str
    outcome: str
    objective_nano: int  # the most one outcome may cost
    window_seconds: int
    scope: Mapping[str, str] = field(default_factory=dict)
    min_outcomes: int = 1
    description: str = ""
    location: SourceLocation = SourceLocation("<memory>", 0)  # noqa: RUF009 - immutable, as in policy.types


@dataclass(frozen=True, slots=True)
class LoadedSlo:
    spec: SloSpec
    name_line: int


def validate_slo(chk: DocChecker, doc: YMap) -> LoadedSlo | None:
    before = len(chk.issues)
    chk.keys(doc, "", SLO_KEYS, ("name", "outcome", "objective", "window"))
    name = check_name(chk, doc)
    outcome = chk.string(doc.get("outcome"), "outcome", what="an outcome type such as ticket_resolved")
    if outcome is not None:
        try:
            validate_value("outcome", outcome)
        except InvalidAttribute as exc:
            chk.issue(doc.get("outcome").line, "outcome", str(exc))  # type: ignore[union-attr]
    objective = None
    node = doc.get("objective")
    if node is not None:
        if not isinstance(node, YScalar) or isinstance(node.value, bool):
            chk.issue(node.line, "objective", f"expected an amount such as '0.12 USD', got {describe(node)}")
        else:
            try:
                objective = parse_usd(node.text)
            except MoneyError as exc:
                chk.issue(node.line, "objective", str(exc))
            if objective is not None and objective <= 0:
                chk.issue(node.line, "objective", f"expected an amount greater than 0 USD, got {node.text!r}")
    seconds = None
    win = chk.mapping(doc.get("window"), "window", what="{rolling: 1d}")
    if win is not None:
        chk.keys(win, "window", ("rolling",), ("rolling",))
        text = chk.string(win.get("rolling"), "window.rolling", what="a duration such as 1h or 1d")
        if text is not None:
            try:
                seconds = parse_duration(text)
            except WindowError as exc:
                chk.issue(win.line, "window.rolling", str(exc))
    scope: dict[str, str] = {}
    scope_node = chk.mapping(doc.get("scope"), "scope", what="a mapping of dimension -> value")
    if scope_node is not None:
        chk.keys(scope_node, "scope", SCOPE_DIMENSIONS)
        for key, entry in scope_node.entries.items():
            value = chk.string(entry.node, f"scope.{key}", what="a dimension value")
            if value is not None and key in SCOPE_DIMENSIONS:
                scope[key] = value
    min_outcomes = chk.integer(doc.get("min_outcomes"), "min_outcomes", minimum=1, what="an integer >= 1")
    description = chk.string(doc.get("description"), "description", allow_empty=True)
    if len(chk.issues) != before or None in (name, outcome, objective, seconds):
        return None
    assert name is not None and outcome is not None and objective is not None and seconds is not None
    spec = SloSpec(name, outcome, objective, seconds, scope, min_outcomes or 1, description or "",
                   chk.location(doc.line))
    name_node = doc.get("name")
    return LoadedSlo(spec, name_node.line if name_node else doc.line)
