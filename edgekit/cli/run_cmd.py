"""`edgekit run`."""

from __future__ import annotations

import click


@click.command("run")
@click.argument("bundle", type=click.Path())
@click.option("--input", "inputs", type=click.Path(), default=None,
              help=".npz with one array per model input (default: generated inputs).")  # fmt: skip
@click.option("--output", type=click.Path(), default=None, help=".npz to write the outputs to.")
@click.option("--device", default=None, help="Run on this device instead of the bundle's.")
def run_command(bundle: str, inputs: str | None, output: str | None, device: str | None) -> None:
    """Check a deploy bundle's checksums and run it once on its runtime.

    Example: edgekit run bundle/ --input x.npz --output y.npz
    """
    from edgekit.deploy.bundle import run_bundle

    res = run_bundle(bundle, inputs, output, device=device)
    click.echo(f"ran {res['bundle']} on {res['runtime']} ({res['device']})")
    for name, arr in res["outputs"].items():
        click.echo(f"{name}: shape {list(arr.shape)} {arr.dtype}")
    if output:
        click.echo(f"wrote {output}")
