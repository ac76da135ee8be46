"""YAML loading: positions, syntax errors, multi-document files, exact money."""

from __future__ import annotations

from pathlib import Path

from costplane.money import NANO_PER_USD
from costplane.policy.bundle import load_bundle

from .helpers import find, issues, write


def test_documents_keep_file_and_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        "policies/a.yaml",
        """
        # comment
        kind: Policy
        name: one
        on: llm.request
        effect: allow
        ---
        kind: Policy
        name: two
        on: llm.request
        effect: allow
        """,
    )
    write(tmp_path, "budgets/b.yml", "kind: Budget\nname: b\nmax_calls: 3\n")
    bundle = load_bundle(tmp_path)
    assert [p.name for p in bundle.policies] == ["one", "two"]
    assert str(bundle.policies[0].location) == f"{tmp_path / 'policies/a.yaml'}:2"
    assert str(bundle.policies[1].location) == f"{tmp_path / 'policies/a.yaml'}:7"
    assert bundle.files == ("budgets/b.yml", "policies/a.yaml")
    assert bundle.budgets[0].location.line == 1


def test_files_are_read_recursively_in_sorted_order_and_hidden_ones_skipped(tmp_path: Path) -> None:
    for name in ("z.yaml", "a/b/c.yaml", "m.yml"):
        write(
            tmp_path, name, f"kind: Budget\nname: {name.replace('/', '-').replace('.', '-')}\nmax_calls: 1\n"
        )
    write(tmp_path, ".hidden/x.yaml", "not: [valid")
    write(tmp_path, "notes.txt", "kind: Nothing")
    bundle = load_bundle(tmp_path)
    assert bundle.files == ("a/b/c.yaml", "m.yml", "z.yaml")
    assert [b.name for b in bundle.budgets] == ["a-b-c-yaml", "m-yml", "z-yaml"]


def test_yaml_syntax_error_has_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", "kind: Policy\nname: x\nwhen: [1, 2\neffect: deny\n")
    found = issues(tmp_path)
    assert len(found) == 1
    assert found[0].field == "(yaml)"
    assert str(found[0].location) == f"{tmp_path / 'bad.yaml'}:4"
    assert "YAML syntax error" in found[0].message
    assert "started at line 3" in found[0].message


def test_documents_before_a_syntax_error_are_still_checked(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", "kind: Polcy\nname: x\n---\nkey: 'unterminated\n")
    found = issues(tmp_path)
    assert {i.field for i in found} == {"kind", "(yaml)"}


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", "kind: Policy\nname: a\non: llm.request\neffect: allow\neffect: deny\n")
    issue = find(issues(tmp_path), "effect")
    assert issue.location.line == 5
    assert "duplicate key 'effect' (first given at line 4)" in issue.message


def test_on_key_is_not_a_boolean(tmp_path: Path) -> None:
    # YAML 1.1 reads a bare `on` as True; keys are taken from their source text.
    write(tmp_path, "p.yaml", "kind: Policy\nname: a\non: llm.request\neffect: allow\n")
    assert load_bundle(tmp_path).policies[0].hook == "llm.request"


def test_money_is_read_from_source_text(tmp_path: Path) -> None:
    write(
        tmp_path,
        "b.yaml",
        """
        kind: Budget
        name: a
        amount: 0.1
        ---
        kind: Budget
        name: b
        amount: 0.3 USD
        ---
        kind: Budget
        name: c
        amount: 1_000
        ---
        kind: Budget
        name: d
        amount: "$0.000000001"
        """,
    )
    bundle = load_bundle(tmp_path)
    amounts = {b.name: b.amount_nano for b in bundle.budgets}
    assert amounts == {"a": NANO_PER_USD // 10, "b": 3 * NANO_PER_USD // 10, "c": 1000 * NANO_PER_USD, "d": 1}
    assert all(isinstance(v, int) for v in amounts.values())


def test_amount_below_a_nano_dollar_is_an_issue(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", "kind: Budget\nname: a\namount: 0.0000000001\n")
    issue = find(issues(tmp_path), "amount")
    assert issue.location.line == 3
    assert "more precision than 1e-9 USD" in issue.message


def test_empty_documents_and_empty_bundle(tmp_path: Path) -> None:
    write(tmp_path, "empty.yaml", "---\n---\n")
    bundle = load_bundle(tmp_path)
    assert bundle.policies == () and bundle.budgets == () and bundle.tests == ()


def test_missing_directory_is_a_bundle_error(tmp_path: Path) -> None:
    found = issues(tmp_path / "nope")
    assert found[0].field == "(bundle)"
    assert "does not exist" in found[0].message
