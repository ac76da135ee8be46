"""The revision of a bundle: its git commit, or a hash of its files outside git.

`git:<sha>` when the bundle directory is inside a git work tree with at least
one commit; `git:<sha>+dirty.<12 hex of the content hash>` when `git status
--porcelain` shows changes under the bundle directory (untracked files
included), so that two different uncommitted states never share a revision;
otherwise
`sha256:<hex>` over the sorted (relative path, bytes) of the bundle files.
Every decision records the revision it was made under.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

__all__ = ["GIT_TIMEOUT_SECONDS", "bundle_files", "bundle_revision", "content_hash"]

GIT_TIMEOUT_SECONDS = 5.0
SUFFIXES = (".yaml", ".yml")


def bundle_files(root: Path) -> list[Path]:
    """Every *.yaml / *.yml file under root, recursively, sorted by relative path.

    Hidden files and directories (a leading dot, e.g. `.git`) are skipped.
    """
    found: list[Path] = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if path.suffix.lower() not in SUFFIXES or any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def content_hash(root: Path, files: Sequence[Path]) -> str:
    """`sha256:<hex>` over the sorted (relative path, bytes) of files."""
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        name = path.relative_to(root).as_posix().encode()
        data = path.read_bytes()
        digest.update(len(name).to_bytes(8, "big") + name)
        digest.update(len(data).to_bytes(8, "big") + data)
    return f"sha256:{digest.hexdigest()}"


def _git(git: str, cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            [git, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _git_revision(root: Path) -> tuple[str, bool] | None:
    """(git:<sha>, dirty) or None outside git."""
    git = shutil.which("git")
    if git is None:
        return None
    inside = _git(git, root, "rev-parse", "--is-inside-work-tree")
    if inside is None or inside.strip() != "true":
        return None
    head = _git(git, root, "rev-parse", "--verify", "HEAD")
    if head is None or not head.strip():
        return None  # a repository without commits
    status = _git(git, root, "status", "--porcelain", "--untracked-files=all", "--", ".")
    if status is None:
        return None
    return f"git:{head.strip()}", bool(status.strip())


def bundle_revision(path: Path | str, files: Sequence[Path] | None = None) -> str:
    """`git:<sha>[+dirty.<hash>]` inside a git work tree, else `sha256:<hex>` of the bundle files."""
    root = Path(path)
    listed = bundle_files(root) if files is None else files
    git = _git_revision(root)
    if git is None:
        return content_hash(root, listed)
    commit, dirty = git
    if not dirty:
        return commit
    return f"{commit}+dirty.{content_hash(root, listed).removeprefix('sha256:')[:12]}"
