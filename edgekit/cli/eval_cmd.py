"""`edgekit eval`: accuracy of a model in any format on any runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from edgekit.cli._common import (
    DATA_SOURCES_HELP,
    echo_json,
    factory_options,
    feed_options,
    resolve_model,
)
from edgekit.cli._complete import complete_runtime
from edgekit.cli.params import BATCH, THREADS, allow_oversubscribe_option


@click.command("eval")
@click.argument("model", type=click.Path())
@factory_options(trust=True)
@click.option(
    "--dataset",
    required=True,
    metavar="DATA",
    help=DATA_SOURCES_HELP,
)
@click.option(
    "--runtime",
    metavar="NAME",
    help="keras, litert, onnxruntime or openvino (default: the format's natural one).",
    shell_complete=complete_runtime,
)
@click.option(
    "--reference",
    type=click.Path(exists=True),
    help="A second model to compare predictions with (e.g. the Keras original).",
)
@click.option("--reference-runtime", metavar="NAME", help="Runtime for --reference.",
              shell_complete=complete_runtime)  # fmt: skip
@feed_options
@click.option(
    "--split",
    type=click.Choice(["test", "val", "train"]),
    default="test",
    show_default=True,
    help="Which split of the dataset to score.",
)
@click.option(
    "--batch-size",
    type=BATCH,
    default=64,
    show_default=True,
    help="Batch size when the model's batch axis is dynamic.",
)
@click.option("--device", help="Runtime device (e.g. CPU, GPU).")
@click.option("--threads", type=THREADS, help="Runtime threads.")
@allow_oversubscribe_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Also write the result as a self-contained HTML page to this file.")  # fmt: skip
def eval_command(
    model: str,
    dataset: str,
    runtime: str | None,
    reference: str | None,
    reference_runtime: str | None,
    feed: Any,
    accept_low_baseline: bool,
    split: str,
    batch_size: int,
    device: str | None,
    threads: int | None,
    as_json: bool,
    html_path: str | None,
    example_input: tuple[str, ...],
    trust_model: bool,
) -> None:
    """Score MODEL (keras, tflite, onnx, openvino, savedmodel) on a dataset.

    Quantized inputs and outputs are converted with the model's scale and zero
    point. With --reference, also reports how often both models agree.

    Example: edgekit eval runs/cnn/model.tflite --dataset digits --reference runs/cnn/model.keras
    """
    model = resolve_model(model, trust_model, example_input)
    from edgekit.evaluate import evaluate

    r = evaluate(
        model,
        dataset,
        runtime=runtime,
        reference=reference,
        feed=feed,
        reference_runtime=reference_runtime,
        split=split,
        batch_size=batch_size,
        device=device,
        threads=threads,
    )
    if r.feed:
        click.echo(f"feed: {r.feed['description']}", err=True)
    if not accept_low_baseline:
        for w in r.warnings:
            click.echo(f"WARNING: {w}", err=True)
    if html_path:
        import json

        from edgekit.reports import write_page

        # through JSON, so that `edgekit report` on the --json output gives the same page
        page = write_page(json.loads(json.dumps(r.to_dict(), default=str)), Path(html_path))
        click.echo(f"page: {page}", err=as_json)
    if as_json:
        echo_json(r.to_dict())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{model} ({r.format} on {r.runtime})", show_header=False)
    table.add_row("dataset", f"{r.dataset} ({r.split}, {r.samples} samples)")
    table.add_row("accuracy", f"{r.accuracy:.2%} ({r.errors} errors)")
    table.add_row("preprocess", r.preprocess)
    if r.reference:
        ref = r.reference
        table.add_row("reference", f"{ref['model']} ({ref['format']} on {ref['runtime']})")
        table.add_row("reference accuracy", f"{ref['accuracy']:.2%}")
        table.add_row(
            "agreement", f"{ref['agreement']:.2%} ({ref['disagreements']} samples differ)"
        )
        if ref["max_abs_diff"] is not None:
            table.add_row("max |score diff|", f"{ref['max_abs_diff']:.3g}")
    table.add_row("time", f"{r.wall_time_s:.2f} s")
    console = Console()
    console.print(table)
    cm = Table(title="confusion (rows: true, columns: predicted)")
    cm.add_column("")
    for name in r.class_names:
        cm.add_column(name, justify="right")
    for name, row in zip(r.class_names, r.confusion_matrix, strict=True):
        cm.add_row(name, *(str(v) if v else "." for v in row))
    console.print(cm)
