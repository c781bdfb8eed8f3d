"""`edgekit inspect`."""

from __future__ import annotations

import click

from edgekit.cli._common import console, echo_json, quant_str, shape_str
from edgekit.cli._complete import complete_runtime


@click.command("inspect")
@click.argument("model", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--runtime",
    "runtimes",
    multiple=True,
    help="Check only these runtimes (default: litert, onnxruntime, openvino).",
    shell_complete=complete_runtime,
)
@click.option("--trust-model", is_flag=True, help="Allow code embedded in a Keras model to run.")
def inspect_command(
    model: str, as_json: bool, runtimes: tuple[str, ...], trust_model: bool
) -> None:
    """Show a model's format, signature, ops, and which runtimes really run it.

    Example: edgekit inspect person_detect.tflite --json
    """
    from edgekit.inspect import inspect_model

    info = inspect_model(model, runtimes=list(runtimes) or None, trust_model=trust_model)
    if as_json:
        echo_json(info)
        return
    from rich.table import Table

    out = console()
    out.print(f"[bold]{info['path']}[/bold]  format={info['format']}  size={info['size_bytes']:,} B"
              f"  params={info['params']:,}")  # fmt: skip
    out.print(f"sha256 {info['sha256']}")
    table = Table(title="Signature")
    for col in ("", "name", "shape", "dtype", "quantization"):
        table.add_column(col)
    for kind in ("inputs", "outputs"):
        for t in info[kind]:
            table.add_row(
                kind[:-1],
                t["name"],
                shape_str(t["shape"]),
                t["dtype"],
                quant_str(t["quantization"]),
            )
    out.print(table)
    ops = ", ".join(f"{k}×{v}" for k, v in info["ops"].items())
    out.print(f"ops: {ops}")
    rt_table = Table(title="Runtimes")
    rt_table.add_column("runtime")
    rt_table.add_column("runs it")
    rt_table.add_column("detail")
    for name, r in info["runtimes"].items():
        rt_table.add_row(
            name, "[green]yes[/green]" if r["ok"] else "[red]no[/red]", r["error"] or ""
        )
    out.print(rt_table)
