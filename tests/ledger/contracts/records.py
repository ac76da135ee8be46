"""Builders of the records the conformance suites store (keys, users, environments, runs)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from ledger_helpers import NOW

from costplane.attribution.context import Context
from costplane.ledger import KeyRecord
from costplane.ledger.envtypes import EnvironmentRecord, EnvState
from costplane.ledger.runtypes import OutcomeRecord, RunNode
from costplane.ledger.usertypes import ApiTokenRecord, UserRecord

__all__ = ["api_token", "environment", "key", "outcome", "run_node", "user"]


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def key(*, team: str = "ml", secret_hash: str | None = None, at: datetime = NOW) -> KeyRecord:
    return KeyRecord(id=_id("k"), secret_hash=secret_hash or uuid.uuid4().hex, prefix="cp_test", name="test key",
                     attributes={"team": team}, created_at=at)


def user(name: str | None = None, *, role: str = "developer", teams: tuple[str, ...] = ("ml",)) -> UserRecord:
    return UserRecord(id=_id("u"), name=name or _id("name"), role=role, teams=teams, password_hash="",
                      created_at=NOW)


def api_token(user_id: str, *, secret_hash: str | None = None) -> ApiTokenRecord:
    return ApiTokenRecord(id=_id("t"), secret_hash=secret_hash or uuid.uuid4().hex, prefix="cpt_test",
                          user_id=user_id, name="ci", created_at=NOW)


def environment(*, state: str = EnvState.ACTIVE, team: str = "ml", blueprint: str = "sandbox",
                at: datetime = NOW, next_action: timedelta = timedelta(hours=1)) -> EnvironmentRecord:
    return EnvironmentRecord(
        id=_id("env"), blueprint=blueprint, state=state, context=Context(team=team, owner="ada"),
        inputs={"size": "small"}, resources=({"sku": "cpu", "count": 1, "hourly_nano": 1000},),
        driver={"type": "process"}, handle={}, lifecycle={"ttl": 3600}, hourly_nano=1000, projected_nano=1000,
        decision_id=_id("d"), bundle_revision="sha256:test", created_at=at, expires_at=at + timedelta(hours=1),
        max_expires_at=at + timedelta(hours=4), next_action_at=at + next_action,
    )


def run_node(run: str, node_id: str | None = None, *, parent: str | None = None, kind: str = "run",
             at: datetime = NOW) -> RunNode:
    return RunNode(id=node_id or run, run=run, kind=kind, name=f"{kind} {node_id or run}", started_at=at,
                   parent_id=parent, context=Context(team="ml", run=run))


def outcome(name: str = "ticket_resolved", value: str = "1", *, at: datetime = NOW, run: str | None = None,
            agent: str | None = None) -> OutcomeRecord:
    return OutcomeRecord(id=_id("o"), ts=at, outcome=name, value=Decimal(value),
                         context=Context(team="ml", run=run, agent=agent))
