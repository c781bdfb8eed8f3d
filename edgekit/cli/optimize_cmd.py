"""`edgekit optimize`."""

from __future__ import annotations

from typing import Any

import click

from edgekit.cli._common import echo_json, factory_options, feed_options, resolve_model
from edgekit.cli._complete import complete_profile
from edgekit.cli.params import (
    EPOCHS,
    OPEN_FRACTION,
    PERCENT_POINTS,
    THREADS,
    allow_oversubscribe_option,
)
from edgekit.optimize import QUANTIZE_CHOICES


@click.command("optimize")
@click.argument("model", type=click.Path())
@factory_options(trust=True)
@click.option("--profile", "-p", required=True,
              help="Target profile name or .toml path; 'host' (every profile this machine "
              "runs) or 'a,b,c' to find the fastest target, into OUT/<profile>/.",
              shell_complete=complete_profile)  # fmt: skip
@click.option("--out", "-o", required=True, type=click.Path(), help="Output folder.")
@click.option("--prune", type=OPEN_FRACTION, default=None, help="Target sparsity, e.g. 0.5.")
@click.option("--structured", is_flag=True, help="Prune whole filters/units (Keras models).")
@click.option(
    "--quantize",
    type=click.Choice(QUANTIZE_CHOICES),
    default=None,
    help="Precision; default 'auto' when the profile allows several: try each, keep the "
    "fastest within the accuracy budget. bf16 is the fp32 model computed in bf16 (OpenVINO "
    "CPU profiles that list it); a precision the profile's target cannot run is refused.",
)
@click.option("--calib-data", default=None, help="Calibration data: digits, npz:FILE, images:DIR.")
@click.option("--eval-data", default=None, help="Evaluation data (default: --calib-data's).")
@click.option(
    "--max-accuracy-drop",
    type=PERCENT_POINTS,
    default=1.0,
    show_default=True,
    help="Accuracy budget in absolute points; int8 layers are kept float to meet it.",
)
@click.option("--threads", type=THREADS, default=None, help="Threads when measuring (default 1).")
@allow_oversubscribe_option
@click.option(
    "--epochs",
    type=EPOCHS,
    default=None,
    help="Fine-tuning epochs (default 8 structured, 4 magnitude).",
)
@click.option("--json", "as_json", is_flag=True, help="Print report.json.")
@feed_options
def optimize_command(
    model: str,
    profile: str,
    out: str,
    prune: float | None,
    structured: bool,
    quantize: str | None,
    calib_data: str | None,
    eval_data: str | None,
    max_accuracy_drop: float,
    threads: int | None,
    epochs: int | None,
    as_json: bool,
    example_input: tuple[str, ...],
    trust_model: bool,
    feed: Any,
    accept_low_baseline: bool,
) -> None:
    """Make MODEL smaller and faster for a profile and prove what it cost.

    Writes the optimized model, report.json, report.md and report.html into --out.

    With --profile host (or a,b,c) each profile's output goes to OUT/<profile>/, and
    OUT/summary.json says which format, runtime, precision and thread count is fastest
    within the budget, every profile's choice timed side by side in one interleaved run.

    Example: edgekit optimize runs/cnn/model.keras --profile x86-avx512 --out opt/ --prune 0.5
    --structured --calib-data digits
    """
    model = resolve_model(model, trust_model, example_input)
    from edgekit.optimize import optimize
    from edgekit.optimize.fastest import is_many, optimize_for_targets

    if structured and prune is None:
        raise click.UsageError("--structured needs --prune SPARSITY (e.g. --prune 0.5).")
    say = (lambda msg: None) if as_json else (lambda msg: click.echo(f"... {msg}", err=True))
    run = optimize_for_targets if is_many(profile) else optimize
    res = run(
        model,
        profile,
        out=out,
        prune=prune,
        structured=structured,
        quantize=quantize,
        calib_data=calib_data,
        eval_data=eval_data,
        max_accuracy_drop=max_accuracy_drop,
        threads=threads,
        finetune_epochs=epochs,
        progress=say,
        feed=feed,
        accept_low_baseline=accept_low_baseline,
    )
    from edgekit.cli._common import console

    if is_many(profile):
        if as_json:
            echo_json(res.summary)
            return
        from edgekit.optimize.fastest import summary_table as targets_table

        best = res.summary["fastest"]
        click.echo(f"fastest: {best['profile']} ({best['format']} on {best['runtime']}, "
                   f"{best['precision']}, {best['threads']} thread(s)); summary: "
                   f"{res.summary_path}")  # fmt: skip
        console().print(targets_table(res.summary))
        return
    if as_json:
        echo_json(res.report)
        return
    from edgekit.reports import PAGE
    from edgekit.reports.summary import summary_table

    fed = res.report["data"].get("feed")
    if fed:
        click.echo(f"feed: {fed['description']}", err=True)
    click.echo(f"optimized model: {res.model_path}; report: {res.markdown_path}")
    console().print(summary_table(res.report, res.report_path.parent / PAGE))
    for why in (res.report.get("int8_where_it_pays") or {}).get("why", []):
        click.echo(f"int8-where-it-pays kept float: {why}")
    for w in res.warnings:
        click.echo(f"warning: {w}", err=True)
