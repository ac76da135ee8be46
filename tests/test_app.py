"""Application.reload_if_changed: only content that stayed the same for a settle is swapped in."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from costplane.app import Application
from costplane.config import parse_config

BUDGET = "kind: Budget\nname: everything\namount: {amount} USD\n"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Application]:
    """An application whose bundle holds one file, `budgets.yaml`: a 1000 USD budget `everything`."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "budgets.yaml").write_text(BUDGET.format(amount=1000))
    config = parse_config({"store": f"sqlite:///{tmp_path / 'ledger.db'}", "bundle": str(bundle)})
    application = Application(config)
    yield application
    application.close()


def budget_file(app: Application) -> Path:
    assert app.config.bundle is not None
    return app.config.bundle / "budgets.yaml"


def test_truncated_file_is_not_loaded_before_the_write_finishes(app: Application) -> None:
    path = budget_file(app)
    path.write_text("")  # what open("w") leaves before the new content arrives

    def finish_write() -> None:
        time.sleep(0.1)
        path.write_text(BUDGET.format(amount=1001))

    writer = threading.Thread(target=finish_write)
    writer.start()
    assert app.reload_if_changed(settle=0.5) is True
    writer.join()
    # the empty file was never loaded: the budget went straight from 1000 to 1001 USD
    assert app.bundle.budgets["everything"].amount_nano == 1001 * 10**9
    assert app.reload_if_changed(settle=0.5) is False


def test_change_loads_once_it_is_stable_and_only_once(app: Application) -> None:
    before = app.bundle.revision
    budget_file(app).write_text(BUDGET.format(amount=1002))
    assert app.reload_if_changed(settle=0.05) is True
    assert app.bundle.revision != before
    assert app.bundle.budgets["everything"].amount_nano == 1002 * 10**9
    assert app.reload_if_changed(settle=0.05) is False


def test_edit_that_keeps_size_and_timestamp_is_still_seen(app: Application) -> None:
    # a coarse or restored mtime with an unchanged size fooled a stat-based check; content does not lie
    path = budget_file(app)
    stat = path.stat()
    path.write_text(BUDGET.format(amount=1009))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert app.reload_if_changed(settle=0.05) is True
    assert app.bundle.budgets["everything"].amount_nano == 1009 * 10**9


def test_content_that_keeps_changing_waits_for_a_later_check(app: Application) -> None:
    path = budget_file(app)
    staging = path.with_suffix(".tmp")
    done = threading.Event()
    written: list[int] = []

    def keep_writing() -> None:  # whole-file replacements, so every state read is a valid bundle
        amount = 2000
        while not done.is_set():
            amount += 1
            staging.write_text(BUDGET.format(amount=amount))
            os.replace(staging, path)
            written.append(amount)
            time.sleep(0.005)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        assert app.reload_if_changed(settle=0.1) is False  # gave up after ten settles of churn
    finally:
        done.set()
        writer.join()
    assert app.bundle.budgets["everything"].amount_nano == 1000 * 10**9
    assert app.reload_if_changed(settle=0.05) is True  # quiet now: the last write is loaded
    assert app.bundle.budgets["everything"].amount_nano == written[-1] * 10**9


def test_emptied_file_that_stays_empty_is_loaded(app: Application) -> None:
    # the settle delay must not refuse a deliberate edit: an empty file that stays empty is the new bundle
    path = budget_file(app)
    path.write_text("")
    assert app.reload_if_changed(settle=0.05) is True
    assert "everything" not in app.bundle.budgets


def test_invalid_edit_keeps_the_old_bundle_and_is_reported_once(
    app: Application, caplog: pytest.LogCaptureFixture
) -> None:
    path = budget_file(app)
    revision = app.bundle.revision
    path.write_text("kind: Budget\nname: everything\namount: lots\n")
    with caplog.at_level("ERROR", logger="costplane.app"):
        assert app.reload_if_changed(settle=0.05) is False
        assert app.reload_if_changed(settle=0.05) is False
    assert [r.message.splitlines()[0] for r in caplog.records] == [
        f"bundle reload rejected, keeping revision {revision}:"]
    assert "budgets.yaml:3" in caplog.records[0].message
    assert app.bundle.revision == revision
    assert app.bundle.budgets["everything"].amount_nano == 1000 * 10**9
