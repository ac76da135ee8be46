"""No server paths in what the API and the dashboard say: decision reasons and error messages name bundle
files relative to the bundle directory ("policies/x.yaml:12"), never as the server's absolute path.

`bundle_relative` first strips the bundle root when it is known; any absolute path of a file that is still
left (a bundle loaded from another directory earlier, an exception's text) is cut to its last two parts
("/srv/costplane/bundle/policies/x.yaml:12" -> "policies/x.yaml:12"). URL paths such as /api/v1/budgets
have no file suffix and are left alone. Python traceback lines lose their file path too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["bundle_relative"]

_SUFFIXES = r"ya?ml|json|py|cel|rego|toml|txt|db|sqlite|csv|sql|ini|cfg|pem|key|crt"
_FILE = re.compile(rf"(?<![\w.\-~/:])(?:[A-Za-z]:)?(?:/[^\s/'\"(),;:<>]+)+\.(?:{_SUFFIXES})\b", re.IGNORECASE)
_TRACEBACK = re.compile(r'File "[^"]*[/\\]([^"/\\]+)", line')


def _tail(match: re.Match[str]) -> str:
    parts = match.group(0).replace("\\", "/").split("/")
    return "/".join(p for p in parts[-2:] if p)


def bundle_relative(text: str, roots: Iterable[Path | str | None] = ()) -> str:
    """`text` with bundle paths made relative to the bundle root and no other absolute file path."""
    if not text or ("/" not in text and "\\" not in text):
        return text
    for root in roots:
        if root:
            prefix = str(root).rstrip("/\\")
            for variant in {prefix, str(Path(prefix).resolve())}:
                text = text.replace(variant + "/", "").replace(variant + "\\", "")
    text = _TRACEBACK.sub(r'File "\1", line', text)
    return _FILE.sub(_tail, text)
