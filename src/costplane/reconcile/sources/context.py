"""What every bill reader needs besides the file: the day clock and the name mappings."""

from __future__ import annotations

from dataclasses import dataclass

from costplane.reconcile.clock import DayClock
from costplane.reconcile.normalize import normalize_model
from costplane.reconcile.settings import NO_PROJECT, ReconcileSettings

__all__ = ["ReadContext"]


@dataclass(frozen=True, slots=True)
class ReadContext:
    clock: DayClock
    settings: ReconcileSettings

    @classmethod
    def of(cls, settings: ReconcileSettings) -> ReadContext:
        return cls(DayClock(settings.timezone), settings)

    def model(self, name: str) -> str:
        return normalize_model(name, self.settings.models)

    def project(self, bill_id: str | None) -> str:
        """A bill's project/workspace id as a costplane project: `reconcile.projects[id]`, else the id
        itself; a null id (the default project/workspace) is `reconcile.projects.default`, else no
        project."""
        if bill_id is None:
            return self.settings.projects.get("default", NO_PROJECT)
        return self.settings.projects.get(bill_id, bill_id)
