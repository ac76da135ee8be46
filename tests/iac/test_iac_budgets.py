"""The IaC gate decides each planned resource at hook iac.plan as a dry run against the budgets: the
plan's worst case on top of what the budgets already spent and hold, nothing reserved, every decision
logged with its exact facts."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from costplane.attribution.context import Context
from costplane.cli.main import app
from costplane.core.bundle_state import ActiveBundle
from costplane.core.claims import budget_claims
from costplane.core.decider import Decider
from costplane.iac import check_plan, load_plan
from costplane.ledger.store import Store
from costplane.ledger.types import CostEvent
from costplane.policy.bundle import load_bundle
from costplane.policy.engine import PolicyEngine
from costplane.policy.hookschema import DECISION_INPUT_VERSION
from costplane.pricing.skus import SkuCatalog

PLAN = Path(__file__).resolve().parents[2] / "examples" / "iac" / "plan.json"
ML = {"team": "ml"}  # every resource of the plan is the ml team's
# the plan's monthly worst cases, in plan order: web 70.08, trainer 16029.07866, (notebook unpriced), api 140.16 USD


def _engine(tmp_path: Path, amount: str) -> PolicyEngine:
    root = tmp_path / f"bundle-{amount.replace('.', '_')}"
    root.mkdir()
    (root / "b.yaml").write_text(textwrap.dedent(f"""
        kind: Budget
        name: infra
        scope: ctx.team == "ml"
        amount: {amount} USD
        window: {{calendar: month, timezone: UTC}}
        enforcement: hard
        """))
    return PolicyEngine(load_bundle(root))


def test_a_plan_alone_past_a_hard_budget_is_refused(tmp_path: Path) -> None:
    # the trainer alone (16029.08) fits in 16050 USD; after the web server (70.08) the plan does not
    report = check_plan(load_plan(PLAN), SkuCatalog.load(), _engine(tmp_path, "16050"), ML)
    by = {v.priced.resource.address: v for v in report.verdicts}
    assert not by["aws_instance.web"].denied
    trainer = by["aws_instance.trainer"]
    assert trainer.denied and trainer.would_exceed == ("infra",)
    assert "budget 'infra'" in trainer.reasons[0] and "exceeded" in trainer.reasons[0]
    assert report.denied and report.budgets_exceeded == ("infra",)
    assert report.as_dict()["budgets_exceeded"] == ["infra"]
    roomy = check_plan(load_plan(PLAN), SkuCatalog.load(), _engine(tmp_path, "20000"), ML)
    assert roomy.budgets_exceeded == () and not any(v.denied for v in roomy.verdicts if v.priced.unknown is None)


def test_against_the_ledger_what_is_spent_counts_and_nothing_is_reserved(store: Store, tmp_path: Path) -> None:
    engine = _engine(tmp_path, "20000")
    active = ActiveBundle(engine.revision, engine, {b.name: b for b in engine.bundle.budgets})
    decider = Decider(store, lambda: active)
    spent = CostEvent("ev-gpu", datetime.now(UTC), Context(team="ml"), "aws", "aws/p4d.24xlarge",
                      4_000 * 10**9, kind="resource")
    claims = budget_claims(active.budgets.values(), Context(team="ml"), "", 0, datetime.now(UTC))
    store.record_spend([spent], [claims], [None])
    before = store.claim_states(claims)
    report = check_plan(load_plan(PLAN), SkuCatalog.load(), context=ML, decider=decider)
    by = {v.priced.resource.address: v for v in report.verdicts}
    assert not by["aws_instance.web"].denied  # 4000 + 70.08 USD
    trainer = by["aws_instance.trainer"]  # 4070.08 + 16029.08 > 20000
    assert trainer.denied and report.budgets_exceeded == ("infra",)
    assert store.claim_states(claims) == before  # a dry run: nothing held, nothing spent
    assert store.open_reservations() == 0
    logged = {d.id: d for d in store.list_decisions(limit=50) if d.hook == "iac.plan"}
    record = logged[trainer.decision_id or ""]
    assert record.effect == "deny" and record.result["code"] == "budget_exceeded"
    assert record.result["dry_run"] is True and record.result["would_exceed"] == ["infra"]
    assert record.input["version"] == DECISION_INPUT_VERSION and record.budgets == ("infra",)
    facts = record.input["request"]
    assert (facts["address"], facts["instance_type"], facts["gpu_count"]) == ("aws_instance.trainer",
                                                                              "p4d.24xlarge", 8)
    web = logged[by["aws_instance.web"].decision_id or ""]
    assert web.effect == "allow" and web.result["would_exceed"] == []
    assert web.input["request"]["tags"]["Name"] == "web-1"


def test_the_cli_checks_against_the_configured_store(tmp_path: Path) -> None:
    engine_dir = tmp_path / "bundle"
    engine_dir.mkdir()
    (engine_dir / "b.yaml").write_text("kind: Budget\nname: infra\nscope: ctx.team == \"ml\"\namount: 16050 USD\n"
                                       "window: {calendar: month, timezone: UTC}\nenforcement: hard\n")
    config = tmp_path / "costplane.yaml"
    config.write_text(f"store: sqlite:///{tmp_path}/ledger.db\nbundle: {engine_dir}\n")
    runner = CliRunner()
    result = runner.invoke(app, ["iac", "check", str(PLAN), "--context", "team=ml", "--against-store",
                                 "--format", "json", "--config", str(config)])
    assert result.exit_code == 1, result.output
    assert '"budgets_exceeded": [\n    "infra"\n  ]' in result.output
    offline = runner.invoke(app, ["iac", "check", str(PLAN), "--context", "team=ml", "--config", str(config)])
    assert offline.exit_code == 1 and "would exceed hard budget(s): infra" in offline.output
