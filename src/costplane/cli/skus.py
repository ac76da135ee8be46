"""`costplane skus`: look up machine/GPU SKU prices by region and rebuild the shipped SKU tables from public data."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import typer

from costplane.cli.common import CONFIG_OPTION, console, fail, load
from costplane.pricing.skubuild import SOURCES, BuildError, build_tables
from costplane.pricing.skus import SkuCatalog, UnknownSku

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Machine and GPU SKU prices (aws, gcp, azure) by region.")


def _shipped_dir() -> Path:
    return Path(str(resources.files("costplane").joinpath("data")))


@app.command()
def show(
    sku: str = typer.Argument(..., help="a SKU id such as aws/p5.48xlarge, gcp/a3-highgpu-8g@europe-west4, "
                                        "aws/gpu/H100"),
    region: str | None = typer.Option(None, "--region", help="region (default: the SKU's @region, else the "
                                                              "provider's default region)"),
    spot: bool = typer.Option(False, "--spot", help="the Spot price (where the data has one: GCP)"),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """The hourly price of one SKU, where it comes from and as of when. Exit 1 when it has no price."""
    catalog = SkuCatalog.load(load(config).pricing)
    try:
        price = catalog.lookup(sku, region=region, spot=spot)
    except UnknownSku as exc:
        fail(str(exc), 1)
    typer.echo(json.dumps({
        "sku": price.sku, "region": price.region or None, "hourly_usd": str(price.hourly_usd),
        "monthly_usd_730h": str(price.hourly_usd * 730), "spot": price.spot, "estimated": price.estimated,
        "gpu_type": price.gpu_type, "gpu_count": price.gpu_count, "vcpus": price.vcpus,
        "memory_gib": None if price.memory_gib is None else str(price.memory_gib), "source": price.source,
        "as_of": price.as_of.isoformat(),
    }, indent=2))


@app.command()
def refresh(
    source: Path = typer.Option(..., "--from", help="directory with the public price files (see docs/pricing.md)"),
    out: Path | None = typer.Option(None, "--out", help="where to write the tables (default: the installed "
                                                        "package's data directory, i.e. src/costplane/data)"),
    as_of: list[str] = typer.Option([], "--as-of", help="provider=YYYY-MM-DD: the data date of newer source files "
                                                       "(repeatable)"),
) -> None:
    """Rebuild the shipped SKU tables (skus-aws/-azure/-gcp.csv.gz and the GPU-share rows in skus.csv) from the
    public price files; exact decimal text, no floats. Exit 2 on a missing or malformed file."""
    if not source.is_dir():
        fail(f"--from: {source} is not a directory (expected {', '.join(s.file for s in SOURCES.values())})", 2)
    try:
        report = build_tables(source, out or _shipped_dir(), dict(a.partition("=")[::2] for a in as_of))
    except BuildError as exc:
        fail(str(exc), 2)
    for provider in SOURCES:
        console.print(f"{provider}: {report.types[provider]} types, {report.regions[provider]} regions, "
                      f"{report.prices[provider]} prices ", highlight=False)
    for name, size in report.written:
        console.print(f"wrote {name} ({size:,} bytes)", highlight=False)
