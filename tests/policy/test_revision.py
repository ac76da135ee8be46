"""Bundle revisions: git commit (+dirty) inside a work tree, content hash outside."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from costplane.policy.bundle import load_bundle
from costplane.policy.revision import BundleSnapshot, bundle_revision, read_snapshot
from costplane.policy.types import BundleError

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


def test_a_snapshot_is_what_gets_parsed_and_hashed(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", "kind: Budget\nname: b\nmax_calls: 1\n")
    snapshot = read_snapshot(tmp_path)
    write(tmp_path, "b.yaml", "kind: Budget\nname: b\nmax_calls: 2\n")  # the files move on
    bundle = load_bundle(tmp_path, snapshot)
    assert bundle.budgets[0].max_calls == 1  # parsed from the snapshot's bytes, not re-read
    assert bundle.digest == bundle.revision == snapshot.digest != read_snapshot(tmp_path).digest
    assert bundle.files == ("b.yaml",)


def test_snapshot_digest_ignores_insertion_order_and_counts_unreadable_files(tmp_path: Path) -> None:
    one = BundleSnapshot({"a.yaml": b"x", "b.yaml": b"y"})
    two = BundleSnapshot({"b.yaml": b"y", "a.yaml": b"x"})
    assert one.digest == two.digest
    assert BundleSnapshot({"a.yaml": b"x"}, {"b.yaml": "Permission denied"}).digest != one.digest
    assert read_snapshot(tmp_path / "missing").unreadable == {"(bundle)": "does not exist"}


def test_unreadable_and_non_utf8_files_are_issues_naming_the_file(tmp_path: Path) -> None:
    snapshot = BundleSnapshot({"bad.yaml": b"kind: Budget\nname: \xff\n"}, {"gone.yaml": "Permission denied"})
    with pytest.raises(BundleError) as caught:
        load_bundle(tmp_path, snapshot)
    text = str(caught.value)
    assert f"{tmp_path / 'bad.yaml'}:1" in text and "not UTF-8" in text
    assert f"{tmp_path / 'gone.yaml'}:1" in text and "cannot read file: Permission denied" in text
