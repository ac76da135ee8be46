"""The Prometheus text exposition format (version 0.0.4), written directly: no client library.

Values are strings so money renders exactly (nano-USD as a decimal USD string).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["CONTENT_TYPE", "Family", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(slots=True)
class Family:
    name: str
    kind: str  # counter | gauge | histogram
    help: str
    samples: list[tuple[str, Mapping[str, str], str]] = field(default_factory=list)  # suffix, labels, value

    def add(self, value: str | int, suffix: str = "", **labels: str) -> None:
        self.samples.append((suffix, labels, str(value)))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(families: list[Family]) -> str:
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {family.help.replace(chr(92), chr(92) * 2).replace(chr(10), ' ')}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for suffix, labels, value in family.samples:
            text = ",".join(f'{name}="{_escape(v)}"' for name, v in labels.items())
            lines.append(f"{family.name}{suffix}{{{text}}} {value}" if text else f"{family.name}{suffix} {value}")
    return "\n".join(lines) + "\n"
