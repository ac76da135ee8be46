"""`costplane demo`: the whole product on this machine, offline, in about half a minute."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        duration: Annotated[float, typer.Option(min=1.0, help="seconds the workload is spread over")] = 25.0,
        requests: Annotated[int, typer.Option(
            min=20, help="roughly how many requests the personas send (the fixed scenarios need ~80)")] = 250,
        fast: Annotated[bool, typer.Option(
            "--fast", help="a ~5 s run with fewer requests (tests, CI)")] = False,
        directory: Annotated[Path | None, typer.Option(
            "--dir", help="a new or empty directory for the ledger and config "
            "(default: .costplane/demo-<timestamp>)")] = None,
        bundle: Annotated[Path | None, typer.Option(
            help="policy bundle directory (default: the repo's examples/bundle)")] = None,
        keep_serving: Annotated[bool, typer.Option(
            "--keep-serving", help="keep gateway and simulator running afterwards, until Ctrl-C")] = False,
        seed: Annotated[int, typer.Option(
            help="seed of the workload and the simulator (same seed, same run)")] = 7,
    ) -> None:
        """Start an offline upstream simulator and the gateway, drive a mixed workload through them with
        each vendor's official client (openai, anthropic, openai-agents, google-genai, boto3, Azure OpenAI),
        and show spend, reroutes, cache hits and denials live."""
        from costplane.demo import missing_dependencies

        console = Console()
        if not console.is_terminal:  # piped or captured: the final summary only, at a readable width
            console = Console(width=max(console.width, 120))
        err = Console(stderr=True)
        missing = missing_dependencies()
        if missing:
            err.print(f"[red]error:[/red] the demo drives the gateway with each vendor's official SDK, and "
                      f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed.\n"
                      + escape("Install them with:  pip install 'costplane[demo]'   (or: make demo)"),
                      highlight=False, soft_wrap=True)
            raise typer.Exit(3)

        from costplane.demo.runner import DemoOptions, run_demo
        from costplane.ledger.store import StoreError
        from costplane.policy.types import BundleError

        options = DemoOptions(duration=duration, requests=requests, directory=directory, bundle=bundle,
                              keep_serving=keep_serving, seed=seed)
        if fast:
            options = options.fast()
        try:
            result = run_demo(options, console)
        except (FileExistsError, FileNotFoundError) as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except BundleError as exc:
            err.print(f"[red]error:[/red] the bundle does not load:\n{escape(str(exc))}", highlight=False,
                      soft_wrap=True)
            raise typer.Exit(2) from None
        except StoreError as exc:
            err.print(f"[red]error:[/red] the store cannot be used: {escape(str(exc))}", highlight=False,
                      soft_wrap=True)
            raise typer.Exit(2) from None
        if result.interrupted:
            raise typer.Exit(130)
