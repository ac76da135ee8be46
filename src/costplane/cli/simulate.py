"""`costplane simulate-upstream`: serve the OpenAI/Anthropic-compatible upstream simulator."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["register", "simulate_upstream"]


def simulate_upstream(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 9001,
    latency_ms: Annotated[float, typer.Option(help="Delay before every answer, in ms.")] = 0.0,
    stream_delay_ms: Annotated[float, typer.Option(help="Delay between streamed tokens, in ms.")] = 0.0,
    fault_rate: Annotated[float, typer.Option(help="Probability (0..1) of a fault per request.")] = 0.0,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="Fault kind for --fault-rate: an HTTP status (500, 503, 429, ...), 'timeout' or "
                          "'cut'. Repeat to mix kinds."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the fault draws (reproducible runs).")] = 0,
    timeout_hang_s: Annotated[float, typer.Option(help="Longest hang of a 'timeout' fault, in s.")] = 30.0,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the upstream SIMULATOR (not a provider): deterministic answers, realistic usage, faults."""
    from costplane.serving import run_server
    from costplane.simulator import SimulatorConfig, create_app

    try:
        config = SimulatorConfig(
            latency_ms=latency_ms,
            stream_delay_ms=stream_delay_ms,
            fault_rate=fault_rate,
            faults=tuple(fault) if fault else ("500",),
            seed=seed,
            timeout_hang_s=timeout_hang_s,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None

    def announce(url: str) -> None:
        typer.echo(f"costplane upstream simulator listening on {url}")
        typer.echo(f"  OpenAI:    base_url={url}/v1   Anthropic: base_url={url}")

    run_server(create_app(config), host, port, log_level=log_level, on_bound=announce)


def register(app: typer.Typer) -> None:
    app.command("simulate-upstream")(simulate_upstream)
