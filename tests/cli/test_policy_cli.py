"""`costplane policy validate|test` through the real Typer app."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from costplane.cli.main import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bundle"
runner = CliRunner()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_validate_example_bundle() -> None:
    result = runner.invoke(app, ["policy", "validate", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "is valid" in result.output
    assert "revision: " in result.output
    assert "llm.request: 9 policies, " in result.output
    assert "budgets (all hooks): 6" in result.output


def test_validate_example_bundle_json() -> None:
    result = runner.invoke(app, ["policy", "validate", str(EXAMPLE), "--format", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["valid"] is True
    assert payload["revision"].startswith(("git:", "sha256:"))
    assert payload["budgets"] == 6
    assert payload["hooks"]["llm.request"]["policies"] == 9


def test_validate_prints_every_issue_and_exits_1(tmp_path: Path) -> None:
    bad = write(
        tmp_path / "p.yaml",
        "kind: Policy\nname: p\non: llm.request\neffect: denny\nwhen: ctx.team ==\n",
    )
    result = runner.invoke(app, ["policy", "validate", str(tmp_path)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{bad}:4: effect: unknown effect 'denny'")
    assert lines[1].startswith(f"{bad}:5: when: CEL syntax error")
    assert "Traceback" not in result.output


def test_validate_json_issues(tmp_path: Path) -> None:
    write(tmp_path / "p.yaml", "kind: Budget\nname: b\namount: 0.1\nwindow: {calendar: month}\n")
    result = runner.invoke(app, ["policy", "validate", str(tmp_path), "--format", "json"])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["valid"] is False
    assert payload["issues"] == [
        {
            "file": str(tmp_path / "p.yaml"),
            "line": 4,
            "field": "window.timezone",
            "message": "a calendar window needs an explicit IANA time zone,"
            " e.g. timezone: Europe/Berlin (or UTC)",
        }
    ]


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    for command in ("validate", "test"):
        result = runner.invoke(app, ["policy", command, str(tmp_path / "nope")])
        assert result.exit_code == 1
        assert "does not exist" in result.output
        assert "Traceback" not in result.output


def test_test_example_bundle_passes() -> None:
    result = runner.invoke(app, ["policy", "test", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "PASS " in result.output and "FAIL " not in result.output
    assert result.output.rstrip().endswith(" passed, 0 failed")


def test_test_reports_failures_and_exits_1(tmp_path: Path) -> None:
    write(
        tmp_path / "p.yaml",
        "kind: Policy\nname: cap\non: llm.request\neffect: mutate\nset: {max_tokens: 10}\n",
    )
    tests = write(
        tmp_path / "t.yaml",
        "kind: PolicyTest\nname: ok\nexpect: {effect: mutate}\n---\n"
        "kind: PolicyTest\nname: wrong\nexpect: {effect: route, max_tokens: 20}\n",
    )
    result = runner.invoke(app, ["policy", "test", str(tmp_path)])
    assert result.exit_code == 1
    assert f"PASS {tests}:1: ok" in result.output
    assert f"FAIL {tests}:5: wrong" in result.output
    assert "    expected effect 'route', got 'mutate'" in result.output
    assert "    expected max_tokens 20, got 10" in result.output
    assert "1 passed, 1 failed" in result.output

    result = runner.invoke(app, ["policy", "test", str(tmp_path), "--format", "json"])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert (payload["passed"], payload["failed"]) == (1, 1)
    assert payload["results"][1]["failures"] == [
        "expected effect 'route', got 'mutate'",
        "expected max_tokens 20, got 10",
    ]


def test_test_on_an_invalid_bundle_prints_issues(tmp_path: Path) -> None:
    write(tmp_path / "t.yaml", "kind: PolicyTest\nname: t\nexpect: {policies: [ghost]}\n")
    result = runner.invoke(app, ["policy", "test", str(tmp_path)])
    assert result.exit_code == 1
    assert "expect.policies: no Policy named 'ghost' in the bundle" in result.output


def test_hooks_prints_every_hook_schema() -> None:
    from costplane.policy.hookschema import HOOK_SCHEMAS, render_markdown

    result = runner.invoke(app, ["policy", "hooks"])
    assert result.exit_code == 0, result.output
    for schema in HOOK_SCHEMAS:
        assert f"{schema.hook}: {schema.decides}" in result.output
    assert "  input_tokens_bound  int " in result.output
    assert "spend.record: " in result.output and "effects: allow, notify; budgets: evaluated" in result.output
    one = runner.invoke(app, ["policy", "hooks", "iac.plan"])
    assert one.exit_code == 0 and one.output.startswith("iac.plan: ") and "llm.request" not in one.output
    markdown = runner.invoke(app, ["policy", "hooks", "--format", "markdown"])
    assert markdown.output == render_markdown()


def test_hooks_json_and_an_unknown_hook() -> None:
    result = runner.invoke(app, ["policy", "hooks", "slo.breach", "--format", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["decision_input_version"] == 1
    [hook] = payload["hooks"]
    assert hook["hook"] == "slo.breach" and hook["effects"] == ["route", "throttle", "notify"]
    assert hook["fields"][0] == {"name": "slo", "cel_type": "string", "description": "the SLO's name",
                                 "example": "support-cost-per-ticket", "optional": False, "default": ""}
    bad = runner.invoke(app, ["policy", "hooks", "llm.reqest"])
    assert bad.exit_code == 2
    assert "unknown hook 'llm.reqest'; expected one of llm.request" in bad.output


def test_validate_reports_an_unknown_request_field_with_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "p.yaml", "kind: Policy\nname: p\non: iac.plan\neffect: deny\nwhen: request.montly_usd > 10.0\n")
    result = runner.invoke(app, ["policy", "validate", str(tmp_path)])
    assert result.exit_code == 1
    assert (f"{tmp_path / 'p.yaml'}:5: when: unknown request field request.montly_usd at hook 'iac.plan'; "
            "did you mean request.monthly_usd?") in result.output
