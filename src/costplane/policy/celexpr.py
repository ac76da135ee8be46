"""CEL expressions of a bundle: compiled once at load, checked statically.

Each `when`/`scope` is compiled with `cel.compile` and checked for what can be
known before any request arrives:

* variables: only `ctx` and `request` exist (names bound by the comprehension
  macros `all`, `exists`, `exists_one`, `map`, `filter` are allowed too);
* `ctx.<field>` must name a real context field (a dimension, `tags` or `key`);
* functions: only those the CEL runtime provides (`startswith` is a typo that
  would otherwise deny every request at run time).

It also records every `request.<field>` the expression names (`request_refs`): the bundle
loader checks them against the schema of the policy's hook (costplane.policy.hookschema),
which only it knows.

The check also records which fields of `ctx` and `request` the expression
reads, so the engine converts only those into CEL values (value conversion,
not evaluation, dominates the cost of a decision).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import cel

from costplane.attribution.context import DIMENSIONS
from costplane.policy.hookschema import HOOK_SCHEMAS, request_defaults

__all__ = [
    "CEL_FUNCTIONS",
    "CTX_FIELDS",
    "REQUEST_DEFAULTS",
    "VARIABLES",
    "CompiledExpr",
    "compile_expr",
]

VARIABLES: tuple[str, ...] = ("ctx", "request")
CTX_FIELDS: tuple[str, ...] = (*DIMENSIONS, "tags", "key")
#: Request fields of `llm.request` that always exist in CEL, with the value used when the caller
#: has none (derived from the hook's schema; every hook's are `hookschema.request_defaults(hook)`).
REQUEST_DEFAULTS: dict[str, object] = request_defaults("llm.request")
_REQUEST_FIELDS = frozenset(f.name for s in HOOK_SCHEMAS for f in s.fields)
#: Named functions the CEL runtime provides (operators are always allowed).
CEL_FUNCTIONS: frozenset[str] = frozenset(
    {
        "size", "contains", "startsWith", "endsWith", "matches",
        "int", "uint", "double", "string", "bytes", "dyn", "type",
        "duration", "timestamp",
        "getDate", "getDayOfMonth", "getDayOfYear", "getFullYear", "getHours",
        "getMilliseconds", "getMinutes", "getMonth", "getSeconds",
        "of", "none", "hasValue", "value", "orValue", "or",
    }
)  # fmt: skip

_STRING = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'')
_MACRO_VAR = re.compile(
    r"\b(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,(?:\s*([A-Za-z_]\w*)\s*,)?"
)
_SYNTAX = re.compile(r"ERROR: <input>:(\d+):(\d+): (.*)")


@dataclass(frozen=True, slots=True)
class CompiledExpr:
    source: str
    program: cel.Program
    ctx_fields: frozenset[str] | None  # fields of ctx read; None = the whole ctx
    request_fields: frozenset[str] | None  # fields of request read; None = the whole request
    #: every `request.<field>` named (also when the whole request is used): for the schema check
    request_refs: frozenset[str] = frozenset()


def _suggest(word: str, choices: tuple[str, ...] | frozenset[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _fields_read(code: str, variable: str) -> frozenset[str] | None:
    """Fields read as `variable.<field>`; None when the variable is used any other way."""
    fields: set[str] = set()
    pattern = re.compile(rf"\b{variable}\b(\s*\.\s*([A-Za-z_]\w*))?")
    for match in pattern.finditer(code):
        name = match.group(2)
        if name is None:
            return None
        fields.add(name)
    return frozenset(fields)


def _refs(code: str, variable: str) -> frozenset[str]:
    """Every `variable.<field>` in `code` that is not a method call (`request.exists(…)`)."""
    pattern = re.compile(rf"\b{variable}\s*\.\s*([A-Za-z_]\w*)\b(?!\s*\()")
    return frozenset(m.group(1) for m in pattern.finditer(code))


def _syntax_message(error: str) -> str:
    match = _SYNTAX.search(error)
    if match is None:
        return f"CEL does not compile: {error.splitlines()[0]}"
    line, column, what = match.groups()
    where = f"column {column}" if line == "1" else f"line {line} column {column} of the expression"
    return f"CEL syntax error at {where}: {what}"


def compile_expr(source: str) -> tuple[CompiledExpr | None, list[str]]:
    """Compile `source`; return (expression, []) or (None, problems)."""
    if not source.strip():
        return None, ['empty expression; expected a CEL boolean expression such as ctx.team == "ml"']
    try:
        program = cel.compile(source)
    except Exception as exc:  # the extension raises ValueError, be safe with anything
        return None, [_syntax_message(str(exc)) + "; expected a CEL boolean expression"]
    problems: list[str] = []
    bound = {name for match in _MACRO_VAR.finditer(source) for name in match.groups() if name}
    for name in program.variables():
        if name in VARIABLES or name in bound:
            continue
        if name in CTX_FIELDS:
            hint = f"; did you mean ctx.{name}?"
        elif name in _REQUEST_FIELDS:
            hint = f"; did you mean request.{name}?"
        else:
            hint = _suggest(name, VARIABLES)
        problems.append(f"unknown variable {name!r}: only ctx and request exist{hint}")
    for name in program.functions():
        if name[:1] in ("_", "@", "!") or name in CEL_FUNCTIONS:
            continue
        problems.append(f"unknown CEL function {name!r}{_suggest(name, CEL_FUNCTIONS)}")
    code = _STRING.sub('""', source)
    opaque = '"""' in source or "'''" in source or "//" in code
    ctx_fields = None if opaque else _fields_read(code, "ctx")
    request_fields = None if opaque else _fields_read(code, "request")
    for name in sorted(ctx_fields or ()):
        if name not in CTX_FIELDS:
            problems.append(
                f"unknown context field ctx.{name}{_suggest(name, CTX_FIELDS)}"
                f" (ctx has {', '.join(CTX_FIELDS)})"
            )
    if problems:
        return None, problems
    uncommented = re.sub(r"//[^\n]*", "", code)
    refs = frozenset() if '"""' in source or "'''" in source else _refs(uncommented, "request")
    return CompiledExpr(source, program, ctx_fields, request_fields, refs), []
