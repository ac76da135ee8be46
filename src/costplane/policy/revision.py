"""The revision of a bundle: its git commit, or a hash of its files outside git.

`git:<sha>` when the bundle directory is inside a git work tree with at least
one commit; `git:<sha>+dirty.<12 hex of the content hash>` when `git status
--porcelain` shows changes under the bundle directory (untracked files
included), so that two different uncommitted states never share a revision;
otherwise
`sha256:<hex>` over the sorted (relative path, bytes) of the bundle files.
Every decision records the revision it was made under.

A `BundleSnapshot` reads each file once: the loader parses, and the digest
hashes, the same bytes, so a bundle's digest always names what it was built from
(the hot reloader relies on this; see `Application.reload_if_changed`).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

__all__ = ["GIT_TIMEOUT_SECONDS", "BundleSnapshot", "bundle_files", "bundle_revision", "read_snapshot"]

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


@dataclass(frozen=True)
class BundleSnapshot:
    """The bytes of every bundle file, read once, by relative path (sorted).

    `unreadable` holds the files that were listed but could not be read (relative path -> why),
    and `(bundle)` when the directory itself is missing.
    """

    files: Mapping[str, bytes]
    unreadable: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def digest(self) -> str:
        """`sha256:<hex>` over the sorted (relative path, bytes); unreadable files count by their error."""
        digest = hashlib.sha256()
        for name, data in sorted(self.files.items()):
            encoded = name.encode()
            digest.update(len(encoded).to_bytes(8, "big") + encoded)
            digest.update(len(data).to_bytes(8, "big") + data)
        for name, why in sorted(self.unreadable.items()):
            digest.update(b"\0unreadable\0" + name.encode() + b"\0" + why.encode())
        return f"sha256:{digest.hexdigest()}"


def read_snapshot(path: Path | str) -> BundleSnapshot:
    """Read every bundle file under `path` once. A file removed between the listing and the read
    is left out, as if the listing had come a moment later."""
    root = Path(path)
    if not root.is_dir():
        return BundleSnapshot({}, {"(bundle)": "exists but is not a directory" if root.exists()
                                    else "does not exist"})
    files: dict[str, bytes] = {}
    unreadable: dict[str, str] = {}
    for file in bundle_files(root):
        name = file.relative_to(root).as_posix()
        try:
            files[name] = file.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            unreadable[name] = exc.strerror or str(exc)
    return BundleSnapshot(files, unreadable)


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


def bundle_revision(path: Path | str, snapshot: BundleSnapshot | None = None) -> str:
    """`git:<sha>[+dirty.<hash>]` inside a git work tree, else `sha256:<hex>` of the bundle files
    (those of `snapshot` when given, else read now)."""
    root = Path(path)
    git = _git_revision(root)
    if git is None:
        return (snapshot or read_snapshot(root)).digest
    commit, dirty = git
    if not dirty:
        return commit
    return f"{commit}+dirty.{(snapshot or read_snapshot(root)).digest.removeprefix('sha256:')[:12]}"
