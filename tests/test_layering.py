"""Layering as docs/architecture.md draws it, checked on the source (every import, lazy ones included).

The rules that already hold are asserted so they cannot regress. Where the code does not follow the
drawing yet, the current imports are listed as KNOWN exceptions: a new violation fails, and an
exception that is fixed may simply be deleted from its list.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "costplane"

#: what the decision core may build on: the data and rule layers below it
CORE_MAY_IMPORT = ("costplane.core", "costplane.attribution", "costplane.ledger", "costplane.money",
                   "costplane.policy", "costplane.pricing")
#: the core importing a caller's package or its configuration types (not yet as drawn)
CORE_KNOWN = {
    ("costplane.core.decision", "costplane.config"),  # Config and ProviderConfig: the gateway's settings
    ("costplane.core.requests", "costplane.config"),  # ProviderConfig on the LLM request
    ("costplane.core.environments", "costplane.lifecycle.drivers"),  # the environment adapter lives in core
    ("costplane.core.slo", "costplane.runs.report"),  # lazy: cost per outcome for the SLO monitor
    # Denial.status (the HTTP layers' mapping, costplane.httpstatus) for callers that still read it there
    ("costplane.core.requests", "costplane.httpstatus"),
}
#: policy compiles and evaluates rules; nothing that serves, stores or calls
POLICY_MAY_NOT_IMPORT = ("costplane.ledger", "costplane.core", "costplane.gateway", "costplane.lifecycle",
                         "costplane.runs", "costplane.config", "costplane.app", "costplane.api", "costplane.web",
                         "costplane.cli", "costplane.server", "costplane.sdk", "costplane.otel")
#: policy parsing durations and windows with the ledger's window type (not yet as drawn)
POLICY_KNOWN = {
    ("costplane.policy.budgetschema", "costplane.ledger.windows"),
    ("costplane.policy.blueprintschema", "costplane.ledger.windows"),
    ("costplane.policy.schema", "costplane.ledger.windows"),
    ("costplane.policy.sloschema", "costplane.ledger.windows"),
    ("costplane.policy.types", "costplane.ledger.windows"),
}
#: HTTP frameworks: only the serving layers (gateway, api, web, receivers) speak HTTP
HTTP_LIBRARIES = ("starlette", "aiohttp", "httpx", "uvicorn", "requests", "fastapi")
#: core modules that choose HTTP status codes today (Denial(402, …), status_code=…); the drawing has
#: the HTTP layers map the core's outcomes to status codes (costplane.httpstatus: a refusal's code -> its
#: status). slo only fills the decision record's status_code (200) of a decision no client waits for.
STATUS_KNOWN = {"costplane.core.slo"}
_STATUS_CALLS = ("Denial", "deny", "_deny")


def _modules(package: str) -> Iterator[tuple[str, ast.Module]]:
    for path in sorted((PACKAGE / package).rglob("*.py")):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        yield name, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _imports(module: str, tree: ast.Module) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: -node.level]
                base = ".".join([*parent, base]) if base else ".".join(parent)
            out.add(base)
    return out


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _violations(package: str, bad: object) -> set[tuple[str, str]]:
    assert callable(bad)
    return {(module, imported) for module, tree in _modules(package) for imported in _imports(module, tree)
            if imported.startswith("costplane") and bad(imported)}


def test_the_source_is_found() -> None:
    assert {name for name, _ in _modules("core")} >= {"costplane.core.decision", "costplane.core.spend"}
    assert "costplane.policy.engine" in {name for name, _ in _modules("policy")}


def test_core_imports_no_caller_package() -> None:
    found = _violations("core", lambda name: not _under(name, CORE_MAY_IMPORT))
    assert found <= CORE_KNOWN, f"new imports of a caller's package from the core: {sorted(found - CORE_KNOWN)}"


def test_policy_imports_neither_the_ledger_nor_any_caller() -> None:
    found = _violations("policy", lambda name: _under(name, POLICY_MAY_NOT_IMPORT))
    assert found <= POLICY_KNOWN, f"new imports from policy: {sorted(found - POLICY_KNOWN)}"


@pytest.mark.parametrize("package", ["core", "policy", "ledger", "pricing", "attribution"])
def test_no_http_framework_below_the_serving_layers(package: str) -> None:
    found = {(module, name) for module, tree in _modules(package) for name in _imports(module, tree)
             if _under(name, HTTP_LIBRARIES)}
    assert not found


def _chooses_status(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            args = [*(node.args if callee in _STATUS_CALLS else []),
                    *(k.value for k in node.keywords if k.arg in ("status", "status_code"))]
            if any(isinstance(a, ast.Constant) and isinstance(a.value, int) and 100 <= a.value <= 599 for a in args):
                return True
    return False


def test_http_status_codes_are_chosen_only_where_they_are_today() -> None:
    found = {module for module, tree in _modules("core") if _chooses_status(tree)}
    assert found <= STATUS_KNOWN, f"core modules newly choosing HTTP status codes: {sorted(found - STATUS_KNOWN)}"


def test_the_status_detector_sees_a_status_code() -> None:
    assert _chooses_status(ast.parse("Denial(402, 'budget_exceeded', 'no room', None)"))
    assert _chooses_status(ast.parse("record(key_id=k, status_code=200)"))
    assert not _chooses_status(ast.parse("timedelta(seconds=300)"))
