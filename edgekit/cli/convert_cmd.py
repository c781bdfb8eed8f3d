"""`edgekit convert`."""

from __future__ import annotations

import click

from edgekit.cli._common import factory_options, resolve_model
from edgekit.cli.params import POSITIVE
from edgekit.convert.graph import TARGETS
from edgekit.convert.onnx_opset import DEFAULT_OPSET, OPSETS

# Declared apart from the other options: the range is the opsets onnx defines.
opset_option = click.option(
    "--opset", type=click.IntRange(*OPSETS), default=None,
    help=f"ONNX opset for ONNX results ({OPSETS[0]}-{OPSETS[1]}, default {DEFAULT_OPSET}); "
    "with an ONNX model and --to onnx, the opset to upgrade (or downgrade) it to.",
)  # fmt: skip


@click.command("convert")
@click.argument("model", type=click.Path())
@factory_options()
@click.option("--to", "to", required=True, type=click.Choice(TARGETS), help="Target format.")
@click.option("--out", "out", required=True, type=click.Path(), help="Output file (or folder).")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=D1,D2,...",
              help="Fix a dynamic input's shape, e.g. input=1,224,224,3 (repeatable).")  # fmt: skip
@opset_option
@click.option("--input", "input_file", type=click.Path(), default=None, metavar="FILE.npz",
              help="Verify on these samples (one array per input, optionally with a leading "
              "sample axis) instead of generated inputs.")  # fmt: skip
@click.option("--channels-last", is_flag=True,
              help="PyTorch to TFLite: take and give 4-D tensors as NHWC on the device.")  # fmt: skip
@click.option("--no-verify", is_flag=True, help="Skip the parity check against the source.")
@click.option("--tolerance", type=POSITIVE, default=None,
              help="Largest accepted absolute output error (default depends on precision).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.option("--trust-model", is_flag=True, help="Allow code embedded in a Keras model to run.")
def convert_command(
    model: str,
    to: str,
    out: str,
    input_shapes: tuple[str, ...],
    opset: int | None,
    input_file: str | None,
    channels_last: bool,
    no_verify: bool,
    tolerance: float | None,
    as_json: bool,
    trust_model: bool,
    example_input: tuple[str, ...],
) -> None:
    """Convert MODEL to another format, trying the direct path first and then the others.

    Every result is run against its source on the same inputs; a result that does
    not match counts as a failed path and the next one is tried.

    Example: edgekit convert model.keras --to tflite --out model.tflite --input samples.npz
    """
    model = resolve_model(model, trust_model, example_input)
    from edgekit.convert import convert
    from edgekit.inputs import parse_shapes

    res = convert(model, to, out, input_shapes=parse_shapes(input_shapes), opset=opset,
                  verify=not no_verify, tolerance=tolerance, trust_model=trust_model,
                  channels_last=channels_last, feeds=input_file)  # fmt: skip
    if as_json:
        from edgekit.cli._common import echo_json

        echo_json(res.to_dict())
        return
    for a in res.attempts:
        if not a.ok:
            click.echo(f"tried {a.path_str}: {a.error}")
    click.echo(f"converted {res.source.path} -> {res.model.path} via {res.path_str} "
               f"({', '.join(res.tools)})")  # fmt: skip
    if res.parity is not None:
        click.echo(f"verified: {res.parity.summary()}, against {res.reference}")
    else:
        click.echo("not verified (--no-verify)")
    for note in res.warnings:
        click.echo(f"warning: {note}")
