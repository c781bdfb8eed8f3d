"""`edgekit debug`: find the node that breaks a conversion."""

from __future__ import annotations

import click

from edgekit.cli.params import POSITIVE
from edgekit.convert.graph import TARGETS


@click.group("debug")
def debug_command() -> None:
    """Find the node that breaks a conversion, and cut out the smallest failing subgraph.

    Example: edgekit debug reduce model.onnx --to openvino
    """


@debug_command.command("diverge")
@click.argument("source", type=click.Path())
@click.argument("result", type=click.Path())
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=D1,D2,...",
              help="Fix a dynamic input's shape (repeatable).")  # fmt: skip
@click.option("--tolerance", type=POSITIVE, default=None,
              help="Largest accepted absolute error per value (default: fp32's).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def diverge_command(
    source: str, result: str, input_shapes: tuple[str, ...], tolerance: float | None, as_json: bool
) -> None:
    """Name the first node of ONNX SOURCE whose output differs in RESULT (ONNX or OpenVINO IR).

    Example: edgekit debug diverge model.onnx model.xml
    """
    from edgekit.debug import first_divergence
    from edgekit.inputs import parse_shapes

    found = first_divergence(source, result, tolerance=tolerance,
                             input_shapes=parse_shapes(input_shapes))  # fmt: skip
    if as_json:
        from edgekit.cli._common import echo_json

        echo_json(found.to_dict() if found else None)
        return
    click.echo(found.sentence() if found else "no node's output diverges beyond the tolerance")


@debug_command.command("reduce")
@click.argument("model", type=click.Path())
@click.option("--to", "to", required=True, type=click.Choice(TARGETS), help="Target format.")
@click.option("--out", "out", type=click.Path(), default=None,
              help="Where the subgraph goes (default: MODEL_STEM.reduced.onnx here).")  # fmt: skip
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=D1,D2,...",
              help="Fix a dynamic input's shape (repeatable).")  # fmt: skip
@click.option("--tolerance", type=POSITIVE, default=None,
              help="Largest accepted absolute output error (default: fp32's).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def reduce_command(
    model: str,
    to: str,
    out: str | None,
    input_shapes: tuple[str, ...],
    tolerance: float | None,
    as_json: bool,
) -> None:
    """Bisect ONNX MODEL to the smallest subgraph whose conversion to --to still fails, and save it.

    The saved subgraph is what to attach to a bug report for the converter's project.

    Example: edgekit debug reduce model.onnx --to openvino --out bug.onnx
    """
    from pathlib import Path

    from edgekit.debug.bisect import reduce
    from edgekit.inputs import parse_shapes

    dest = out or f"{Path(model).stem}.reduced.onnx"
    res = reduce(model, to, dest, input_shapes=parse_shapes(input_shapes), tolerance=tolerance)
    if as_json:
        from edgekit.cli._common import echo_json

        echo_json(res.to_dict())
        return
    click.echo(res.sentence())
