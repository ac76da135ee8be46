"""Runs: the latest runs and one run's cost tree (run → agent/pipeline → step → tool → LLM call)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from costplane.web.app import Page

__all__ = ["PAGES"]


async def runs_page(page: Page) -> Response:
    q = page.request.query_params
    query = {name: q[name] for name in ("team", "agent", "pipeline") if q.get(name)}
    data = await page.api("runs", {**query, "limit": "100"})
    return page.render("runs.html", title="Runs", active="/runs", runs=data["runs"], query=query)


async def run_page(page: Page) -> Response:
    run_id = page.request.path_params["run_id"]
    data = await page.api("run", path={"run_id": run_id})
    tree = data.get("tree", data)
    return page.render("run.html", title=f"Run {run_id}", active="/runs", run_id=run_id, tree=tree)


PAGES: tuple[tuple[str, Any, tuple[str, ...]], ...] = (
    ("/runs", runs_page, ("GET",)),
    ("/runs/{run_id}", run_page, ("GET",)),
)
