"""Bundle revisions: git commit (+dirty) inside a work tree, content hash outside."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from costplane.policy.bundle import load_bundle
from costplane.policy.revision import bundle_revision

from .helpers import write

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="no git binary")


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [
            "git",
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_plain_directory_uses_a_content_hash(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    write(root, "b.yaml", "kind: Budget\nname: b\nmax_calls: 1\n")
    first = bundle_revision(root)
    assert first.startswith("sha256:") and len(first) == len("sha256:") + 64
    assert bundle_revision(root) == first
    assert load_bundle(root).revision == first
    write(root, "b.yaml", "kind: Budget\nname: b\nmax_calls: 2\n")
    assert bundle_revision(root) != first
    write(root, "b.yaml", "kind: Budget\nname: b\nmax_calls: 1\n")
    assert bundle_revision(root) == first
    (root / "b.yaml").rename(root / "c.yaml")  # same bytes, another path
    assert bundle_revision(root) != first


def test_hash_ignores_non_bundle_files(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", "kind: Budget\nname: b\nmax_calls: 1\n")
    before = bundle_revision(tmp_path)
    write(tmp_path, "README.md", "notes")
    assert bundle_revision(tmp_path) == before


@needs_git
def test_git_work_tree_uses_the_commit(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    bundle = repo / "bundle"
    write(bundle, "b.yaml", "kind: Budget\nname: b\nmax_calls: 1\n")
    write(repo, "other.txt", "x")
    # no commit yet: falls back to the content hash
    assert bundle_revision(bundle).startswith("sha256:")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    sha = git(repo, "rev-parse", "HEAD")
    assert bundle_revision(bundle) == f"git:{sha}"
    assert load_bundle(bundle).revision == f"git:{sha}"
    # a change outside the bundle directory does not make the bundle dirty
    write(repo, "other.txt", "y")
    assert bundle_revision(bundle) == f"git:{sha}"
    # a modified or untracked file under the bundle does
    write(bundle, "b.yaml", "kind: Budget\nname: b\nmax_calls: 2\n")
    first_dirty = bundle_revision(bundle)
    assert first_dirty.startswith(f"git:{sha}+dirty.")
    git(repo, "checkout", "-q", "--", "bundle/b.yaml")
    write(bundle, "new/c.yaml", "kind: Budget\nname: c\nmax_calls: 1\n")
    second_dirty = bundle_revision(bundle)
    assert second_dirty.startswith(f"git:{sha}+dirty.")
    # two different uncommitted states never share a revision
    assert second_dirty != first_dirty


def test_no_git_binary_falls_back_to_the_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "b.yaml", "kind: Budget\nname: b\nmax_calls: 1\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert bundle_revision(tmp_path).startswith("sha256:")


def test_digest_changes_with_every_edit(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", "kind: Budget\nname: b\nmax_calls: 1\n")
    first = load_bundle(tmp_path)
    assert first.digest.startswith("sha256:") and first.digest == bundle_revision(tmp_path)
    write(tmp_path, "b.yaml", "kind: Budget\nname: b\nmax_calls: 2\n")
    assert load_bundle(tmp_path).digest != first.digest
