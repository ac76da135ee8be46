"""costplane.context: context manager and decorator, across asyncio tasks, threads and nested runs."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import costplane
from costplane.attribution.context import InvalidAttribute
from costplane.sdk.context import current_frame


def test_context_manager_nests_and_restores() -> None:
    with costplane.context(team="ml", tier="experiment"):
        assert costplane.current_context().team == "ml"
        with costplane.context(team="search", user="ada"):
            ctx = costplane.current_context()
            assert (ctx.team, ctx.tier, ctx.user) == ("search", "experiment", "ada")
        assert costplane.current_context().user is None
    assert costplane.current_context().team is None


def test_decorator_sync_and_async() -> None:
    @costplane.context(agent="support-bot")
    def sync() -> str | None:
        return costplane.current_context().agent

    @costplane.context(agent="async-bot")
    async def coro() -> str | None:
        await asyncio.sleep(0)
        return costplane.current_context().agent

    assert sync() == "support-bot"
    assert asyncio.run(coro()) == "async-bot"
    assert costplane.current_context().agent is None


def test_bad_value_names_the_field() -> None:
    with pytest.raises(InvalidAttribute, match=r"costplane.context.team"):
        costplane.context(team="no spaces allowed")


def test_context_survives_gather_without_leaking() -> None:
    async def worker(name: str) -> tuple[str, str | None, str | None]:
        with costplane.context(user=name):
            await asyncio.sleep(0.01)
            ctx = costplane.current_context()
            return name, ctx.user, ctx.team

    async def main() -> list[tuple[str, str | None, str | None]]:
        with costplane.context(team="ml"):
            return await asyncio.gather(*(worker(f"u{i}") for i in range(20)))

    for name, user, team in asyncio.run(main()):
        assert user == name and team == "ml"


def test_context_carried_into_thread_pools() -> None:
    seen: list[str | None] = []
    with costplane.context(team="ml"):
        with ThreadPoolExecutor(4) as plain:
            assert plain.submit(lambda: costplane.current_context().team).result() is None  # threads start empty
            seen.append(costplane.run_in_thread(plain, lambda: costplane.current_context().team).result())
            seen += list(plain.map(costplane.wrap(lambda _: costplane.current_context().team), range(3)))
        with costplane.ContextPool(4) as pool:
            seen += list(pool.map(lambda _: costplane.current_context().team, range(4)))
            seen.append(pool.submit(lambda: costplane.current_context().team).result())
        thread_seen: list[str | None] = []
        thread = threading.Thread(target=costplane.wrap(lambda: thread_seen.append(costplane.current_context().team)))
        thread.start()
        thread.join()
    assert seen == ["ml"] * 9 and thread_seen == ["ml"]


def test_nested_runs_restore_the_outer_run(tmp_path: Path) -> None:
    with costplane.Session(f"sqlite:///{tmp_path}/c.db") as session:
        with session.agent_run("outer", run="run-outer") as outer:
            assert costplane.current_context().run == "run-outer"
            with costplane.agent_run("inner", run="run-inner") as inner:
                ctx = costplane.current_context()
                assert (ctx.run, ctx.agent) == ("run-inner", "inner")
                assert inner.root == "run-outer"

                async def in_task() -> str | None:
                    return costplane.current_context().run

                assert asyncio.run(in_task()) == "run-inner"
            assert costplane.current_context().run == "run-outer" and current_frame().run is outer
        assert current_frame().run is None
        nodes = session.recorder.store.run_nodes("run-outer")  # type: ignore[attr-defined]
    assert {n.id: n.parent_id for n in nodes} == {"run-outer": None, "run-inner": "run-outer"}
    assert all(n.status == "ok" for n in nodes)
