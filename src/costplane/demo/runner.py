"""`run_demo`: start the world, drive the workload with a live view, print the final report.

Every wait is bounded: the workload has a hard deadline, each call a timeout, each server a
stop timeout. Ctrl-C ends the workload early and still prints what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.markup import escape

from costplane.demo.calls import Clients, Tally
from costplane.demo.summary import Snapshot, render, take_snapshot
from costplane.demo.vendors import VendorClients
from costplane.demo.workload import DEFAULT_REQUESTS, Workload, plan_for
from costplane.demo.world import DemoWorld, default_bundle, fresh_directory, open_world

__all__ = ["DemoOptions", "DemoResult", "run_demo"]

#: Which personas call through the 2026 clients (each client is created only for them).
VENDOR_PERSONAS = {"agents": ("concierge",), "gemini": ("doc-pipeline",), "bedrock": ("claims-pipeline",),
                   "azure": ("invoice-copilot",)}

#: Extra time the workload may take beyond --duration before it is cut off.
GRACE_S = 45.0


@dataclass(frozen=True, slots=True)
class DemoOptions:
    duration: float = 25.0
    requests: int = DEFAULT_REQUESTS
    directory: Path | None = None
    bundle: Path | None = None
    keep_serving: bool = False
    seed: int = 7
    latency_ms: float = 30.0
    in_flight: int = 8

    def fast(self) -> DemoOptions:
        """The ~5 s variant used by tests: shorter, fewer requests, every behaviour still shown."""
        return replace(self, duration=4.0, requests=120)


@dataclass(slots=True)
class DemoResult:
    directory: Path
    db_path: Path
    config_path: Path
    snapshot: Snapshot
    examples: dict[tuple[str, str], str] = field(default_factory=dict)  # (persona, code) -> message
    interrupted: bool = False
    timed_out: bool = False


async def _drive(world: DemoWorld, options: DemoOptions, console: Console,
                 tally: Tally) -> tuple[Snapshot, bool]:
    plan = plan_for(options.duration, options.requests)
    clients = Clients(world.gateway_url, world.keys, tally, in_flight=options.in_flight)
    vendors = VendorClients(clients, world.gateway_url, world.keys, VENDOR_PERSONAS)
    started = time.monotonic()

    async def snap(finished: bool) -> Snapshot:
        counted = tally.copy()  # copied on the loop thread; the store is read in a worker thread
        return await asyncio.to_thread(take_snapshot, world.application, counted, world.alerts, world.gateway_url,
                                       time.monotonic() - started, options.duration, finished)

    timed_out = False
    work = asyncio.create_task(Workload(clients, vendors, plan, options.seed).run())
    live: Live | None = None
    try:
        if console.is_terminal:
            live = Live(render(await snap(False), console), console=console, auto_refresh=False,
                        transient=False)
            live.start()
        deadline = started + options.duration + GRACE_S
        while not work.done():
            await asyncio.wait({work}, timeout=0.25)
            if live is not None:
                live.update(render(await snap(False), console), refresh=True)
            if time.monotonic() > deadline and not work.done():
                timed_out = True
                work.cancel()
                await asyncio.wait({work}, timeout=10.0)
                break
        if work.done() and not work.cancelled():
            work.result()  # a bug in a persona surfaces here
        await _settled(world)
        final = await snap(True)
        if live is not None:
            live.update(render(final, console), refresh=True)
        return final, timed_out
    finally:
        if not work.done():
            work.cancel()
            await asyncio.wait({work}, timeout=10.0)
        if live is not None:
            live.stop()
        await asyncio.wait_for(clients.close(), timeout=10.0)
        await asyncio.wait_for(vendors.close(), timeout=10.0)


@contextlib.contextmanager
def _quiet_agents_sdk() -> Iterator[None]:
    """The agents SDK logs every refused model call as an error line; the demo shows the refusals in its
    summary instead, so its logger is quiet while the workload runs (restored afterwards)."""
    sdk = logging.getLogger("openai.agents")
    level = sdk.level
    sdk.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        sdk.setLevel(level)


async def _settled(world: DemoWorld, timeout_s: float = 3.0) -> None:
    """Give settlements still being written (streams just closed) a moment to land."""
    end = time.monotonic() + timeout_s
    while world.application.store.open_reservations() and time.monotonic() < end:
        await asyncio.sleep(0.05)


def run_demo(options: DemoOptions, console: Console) -> DemoResult:
    bundle = (options.bundle or default_bundle()).resolve()
    if not bundle.is_dir():
        raise FileNotFoundError(f"bundle directory {bundle} does not exist (use --bundle)")
    directory = fresh_directory(options.directory)
    tally = Tally()
    console.print(f"[bold]costplane demo[/bold] in {directory}  (bundle {bundle})", highlight=False)
    with open_world(directory, bundle, latency_ms=options.latency_ms, seed=options.seed) as world:
        console.print(f"simulator {world.simulator_url}   gateway {world.gateway_url}   "
                      f"~{options.duration:.0f}s, {options.in_flight} requests in flight", highlight=False)
        interrupted = timed_out = False
        started = time.monotonic()
        try:
            with _quiet_agents_sdk():
                snapshot, timed_out = asyncio.run(_drive(world, options, console, tally))
        except KeyboardInterrupt:
            interrupted = True
            snapshot = take_snapshot(world.application, tally.copy(), world.alerts, world.gateway_url,
                                     time.monotonic() - started, options.duration, True)
        result = DemoResult(directory, world.db_path, world.config_path, snapshot, dict(tally.examples),
                            interrupted, timed_out)
        if not console.is_terminal or interrupted:
            console.print(render(snapshot, console))
        _report(console, world, result)
        if options.keep_serving and not interrupted:
            _serve_until_interrupted(console, world)
    return result


def _report(console: Console, world: DemoWorld, result: DemoResult) -> None:
    if result.interrupted:
        console.print("[yellow]interrupted: the summary above covers what ran before Ctrl-C[/yellow]")
    if result.timed_out:
        console.print("[yellow]the workload did not finish in time and was cut off[/yellow]")
    console.print("\n[bold]Example denials, verbatim as the clients received them[/bold]")
    for (persona, code), message in sorted(result.examples.items(), key=lambda item: item[0][::-1]):
        console.print(f"  [red]{code}[/red] ({persona}): {escape(message)}", highlight=False, soft_wrap=True)
    console.print(f"\ndashboard         {world.dashboard_url}  (while serving: --keep-serving)", highlight=False,
                  soft_wrap=True)
    logins = ", ".join(f"{name} / {password}" for name, password in world.logins.items())
    console.print(f"dashboard logins  {logins}", highlight=False, soft_wrap=True)
    console.print(f"ledger (SQLite)   {world.db_path}", highlight=False, soft_wrap=True)
    console.print(f"configuration     {world.config_path}", highlight=False, soft_wrap=True)
    console.print("\nKeep exploring:", highlight=False)
    console.print("  costplane simulate-upstream --port 9001 &", highlight=False)
    console.print(f"  costplane serve --config {world.config_path}", highlight=False, soft_wrap=True)
    console.print("  costplane demo --keep-serving    # or keep this demo's gateway and simulator running",
                  highlight=False)


def _serve_until_interrupted(console: Console, world: DemoWorld) -> None:
    console.print(f"\n[bold]Still serving[/bold] — gateway {world.gateway_url}  "
                  f"simulator {world.simulator_url}", highlight=False)
    console.print(f"  dashboard {world.dashboard_url} — log in as "
                  + ", ".join(f"{name} / {password}" for name, password in world.logins.items()),
                  highlight=False, soft_wrap=True)
    console.print(f"  a key for you (team ml, tier production; shown once): {world.keys['explorer']}",
                  highlight=False, soft_wrap=True)
    console.print(f"  curl {world.gateway_url}/v1/chat/completions -H 'authorization: Bearer "
                  f"{world.keys['explorer']}' -H 'content-type: application/json' "
                  """-d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}' -i""",
                  highlight=False, soft_wrap=True)
    console.print("Press Ctrl-C to stop.", highlight=False)
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopping…", highlight=False)
