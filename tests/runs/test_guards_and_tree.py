"""Acceptance: a loop-prone agent is stopped by its run guard at its budget with a clear error,
and its run tree shows where the money went. Plus step and tool-call limits."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import openai
import pytest

import costplane
from costplane.money import format_usd
from costplane.runs.tree import build_tree, list_runs
from run_harness import Server


def _loop(client: openai.OpenAI) -> None:
    attempt = 0
    while True:  # never converges: the guard has to stop it (varied, so loop detection does not)
        attempt += 1
        with costplane.step("think"):
            client.chat.completions.create(model="gpt-4o", max_tokens=300, messages=[
                {"role": "user", "content": f"Attempt {attempt}: think again about the refund policy."}])
        with costplane.tool("search", cost_usd="0.0005"):
            pass


@pytest.mark.parametrize("mode", ["direct", "gateway"])
def test_loop_prone_agent_stopped_at_budget(make_server: Callable[..., Server], mode: str) -> None:
    server = make_server()
    session = server.session()
    base = f"{server.simulator_url}/v1" if mode == "direct" else f"{server.url}/v1"
    client = costplane.instrument(openai.OpenAI(base_url=base, api_key=server.key(), max_retries=0), mode=mode,
                                  session=session)
    with pytest.raises(costplane.BudgetExceeded) as stopped, \
            session.agent_run("loop-bot", run="run-loop", budget_usd="0.02", max_steps=500) as run:
        _loop(client)
    session.close()
    message = str(stopped.value)
    assert "agent run 'loop-bot' (run run-loop) stopped before a gpt-4o call" in message
    assert "> budget 0.02 USD" in message and stopped.value.limit == "budget"
    assert 0 < run.spent_nano <= 20_000_000  # never over budget: every call was admitted on its worst case

    tree = build_tree(server.app.store, "run-loop")
    assert tree is not None and tree.status == "stopped" and "BudgetExceeded" in tree.attributes["error"]
    assert tree.total_cost_nano == run.spent_nano  # the ledger agrees with the guard to the nano-dollar
    thinks = [c for c in tree.children if c.kind == "step"]
    searches = [c for c in tree.children if c.kind == "tool"]
    assert len(thinks) == len(searches) + 1 >= 5  # stopped inside the last think, before its call
    assert all(len(t.children) == 1 and t.children[0].name == "gpt-4o" for t in thinks[:-1])
    assert thinks[-1].children == []
    assert all(s.cost_nano == 500_000 for s in searches)
    llm = sum(t.total_cost_nano for t in thinks)
    assert llm + 500_000 * len(searches) == tree.total_cost_nano

    key = server.key()
    body = httpx.get(f"{server.url}/v1/runs/run-loop", headers={"authorization": f"Bearer {key}"}, timeout=10).json()
    assert body["cost_usd"] == format_usd(run.spent_nano) and body["status"] == "stopped"
    assert len(body["children"]) == len(thinks) + len(searches)
    listing = httpx.get(f"{server.url}/v1/runs", headers={"authorization": f"Bearer {key}"}, timeout=10).json()
    assert [r["run"] for r in listing["runs"]] == ["run-loop"] and listing["runs"][0]["cost_nano"] == run.spent_nano
    assert httpx.get(f"{server.url}/v1/runs/nope", headers={"authorization": f"Bearer {key}"},
                     timeout=10).status_code == 404


def test_step_and_tool_limits(make_server: Callable[..., Server]) -> None:
    server = make_server()
    session = server.session()
    client = costplane.instrument(openai.OpenAI(base_url=f"{server.simulator_url}/v1", api_key="sk", max_retries=0),
                                  mode="direct", session=session)
    with pytest.raises(costplane.StepLimitExceeded, match=r"3 steps made, limit max_steps=3"), \
            session.agent_run("chatty", run="run-steps", max_steps=3):
        for _ in range(10):
            client.chat.completions.create(model="gpt-4o-mini", max_tokens=5,
                                           messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(costplane.ToolLimitExceeded, match=r"before tool call 'search': 2 tool calls made"), \
            session.agent_run("tooly", run="run-tools", max_tool_calls=2):
        for _ in range(5):
            with costplane.tool("search"):
                pass
    session.close()
    assert len(server.app.store.run_events("run-steps")) == 3
    summaries = {s.run: s for s in list_runs(server.app.store)}
    assert summaries["run-steps"].status == "stopped" and summaries["run-steps"].events == 3
    assert summaries["run-tools"].cost_nano == 0


def test_pipeline_run_with_gpu_job_and_storage(make_server: Callable[..., Server]) -> None:
    server = make_server()
    session = server.session()
    with session.pipeline_run("fraud-train", experiment="exp-42", run="run-pipe"):
        with costplane.step("train"), costplane.gpu_job("aws/g5.xlarge", count=2, sample_interval=0.05) as job:
            assert costplane.current_context().experiment == "exp-42"
        event = costplane.resource_cost("storage", "aws/c6i.large", seconds=7200)
    session.close()
    price = costplane.sdk.resources.SkuCatalog.load().lookup("aws/g5.xlarge")
    assert job.event is not None and job.event.cost_nano == price.cost_nano(job.seconds, 2) > 0
    tree = build_tree(server.app.store, "run-pipe")
    assert tree is not None and tree.kind == "pipeline" and tree.name == "fraud-train"
    (train,) = [c for c in tree.children if c.kind == "step"]
    (gpu,) = train.children
    assert gpu.kind == "gpu" and gpu.cost_nano == job.event.cost_nano
    assert tree.total_cost_nano == job.event.cost_nano + event.cost_nano
    by_experiment = server.app.store.spend(group_by=["experiment", "kind"])
    assert {(r.group["experiment"], r.group["kind"]) for r in by_experiment} == {("exp-42", "gpu"),
                                                                                 ("exp-42", "storage")}
    with pytest.raises(LookupError, match="no known price for SKU"):
        costplane.resource_cost("gpu", "aws/nope", seconds=1, session=session)
