"""`edgekit deploy`."""

from __future__ import annotations

import click

from edgekit.cli._complete import complete_profile
from edgekit.cli.params import POSITIVE


@click.command("deploy")
@click.argument("model", type=click.Path())
@click.option("--profile", "profile", required=True,
              help="Target profile: a shipped name, a .toml file, or 'auto' (fastest here).",
              shell_complete=complete_profile)  # fmt: skip
@click.option("--out", "out", required=True, type=click.Path(), help="Bundle folder to write.")
@click.option("--archive", is_flag=True, help="Also write <out>.tar.gz.")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=D1,D2,...",
              help="Fix a dynamic input's shape (repeatable).")  # fmt: skip
@click.option("--precision", default=None,
              help="One of the profile's precisions (default: its first that edgekit can make).")  # fmt: skip
@click.option("--no-verify", is_flag=True, help="Skip the parity checks.")
@click.option("--tolerance", type=POSITIVE, default=None, help="Largest accepted output error.")
@click.option("--no-measure", is_flag=True, help="Skip the latency measurement.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.option("--trust-model", is_flag=True, help="Allow code embedded in a Keras model to run.")
def deploy_command(
    model: str,
    profile: str,
    out: str,
    archive: bool,
    input_shapes: tuple[str, ...],
    precision: str | None,
    no_verify: bool,
    tolerance: float | None,
    no_measure: bool,
    as_json: bool,
    trust_model: bool,
) -> None:
    """Convert MODEL for a hardware profile and write a verified, checksummed bundle.

    The bundle holds the model, manifest.json, a standalone run.py, requirements.txt
    and a README for the target. Limits of the profile (size, RAM, static shapes,
    int8 only) are checked before anything is written.

    Example: edgekit deploy model.keras --profile x86-avx2 --out bundle/ --archive
    """
    from edgekit.deploy import deploy
    from edgekit.inputs import parse_shapes

    log = (lambda msg: click.echo(msg, err=True)) if as_json else click.echo
    b = deploy(model, profile, out, archive=archive, input_shapes=parse_shapes(input_shapes),
               verify=not no_verify, tolerance=tolerance, precision=precision,
               measure=not no_measure, trust_model=trust_model, log=log)  # fmt: skip
    if as_json:
        from edgekit.cli._common import echo_json

        echo_json(b.manifest)
        return
    m = b.manifest
    parity = m["measurements"]["parity"]
    if parity:
        click.echo(
            f"parity: max |err| {parity['max_abs_error']:.3g}, cosine {parity['cosine']:.6f}"
        )
    lat = m["measurements"].get("latency")
    if lat:
        click.echo(f"latency ({m['measurements']['measured_on']}): "
                   f"{lat['latency_ms']['median']:.3g} ms median")  # fmt: skip
    for w in b.warnings:
        click.echo(f"warning: {w}")
    from edgekit.cli._common import console
    from edgekit.reports import PAGE
    from edgekit.reports.summary import summary_table

    console().print(summary_table(m, b.path / PAGE))
