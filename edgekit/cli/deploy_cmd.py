"""`edgekit deploy`."""

from __future__ import annotations

from typing import Any

import click

from edgekit.cli._common import factory_options, feed_options, resolve_model
from edgekit.cli._complete import complete_profile
from edgekit.cli.params import POSITIVE
from edgekit.emulate import TARGETS as EMULATED


@click.command("deploy")
@click.argument("model", type=click.Path())
@factory_options()
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
@click.option("--verify-on", "verify_on", type=click.Choice(sorted(EMULATED)), default=None,
              help="Also run the bundle under emulation (qemu-user) and check its outputs "
                   "against this host's; the emulated run is never timed.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.option("--trust-model", is_flag=True, help="Allow code embedded in a Keras model to run.")
@click.option("--calib-data", default=None,
              help="Calibration data for integer precisions: digits, npz:FILE, images:DIR.")  # fmt: skip
@click.option("--eval-data", default=None, help="Evaluation data (default: --calib-data's).")
@feed_options
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
    verify_on: str | None,
    as_json: bool,
    trust_model: bool,
    example_input: tuple[str, ...],
    calib_data: str | None,
    eval_data: str | None,
    feed: Any,
    accept_low_baseline: bool,
) -> None:
    """Convert MODEL for a hardware profile and write a verified, checksummed bundle.

    The bundle holds the model, manifest.json, a standalone run.py, requirements.txt
    and a README for the target. Limits of the profile (size, RAM, static shapes,
    int8 only) are checked before anything is written.

    Example: edgekit deploy model.keras --profile x86-avx2 --out bundle/ --archive

    Example: edgekit deploy model.keras --profile rpi4 --out pi/ --verify-on emulated-aarch64
    """
    if verify_on:  # before any conversion: a refusal writes nothing
        from edgekit.emulate import check_prerequisites

        check_prerequisites(verify_on, profile)
    model = resolve_model(model, trust_model, example_input)
    from edgekit.deploy import deploy
    from edgekit.inputs import parse_shapes

    log = (lambda msg: click.echo(msg, err=True)) if as_json else click.echo
    b = deploy(model, profile, out, archive=archive, input_shapes=parse_shapes(input_shapes),
               verify=not no_verify, tolerance=tolerance, precision=precision,
               measure=not no_measure, trust_model=trust_model, log=log,
               calib_data=calib_data, eval_data=eval_data,
               feed=feed if feed.given() or feed.preprocess else None,
               accept_low_baseline=accept_low_baseline)  # fmt: skip
    if verify_on:
        from edgekit.emulate import verify_emulated
        from edgekit.errors import VerificationError

        check = verify_emulated(b.path, verify_on, tolerance=tolerance)
        log(check.summary())
        if not check.passed:
            raise VerificationError(f"{b.path}: {check.summary()}")
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
