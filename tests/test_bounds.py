"""Every number a user can type has a stated range, checked by click before any work.

The ranges live in `edgekit/cli/params.py`; these tests drive the real command line
in-process (`edgekit.cli.run`), where a value out of range must end in exit 2 and one
sentence that names the option, the value and the range.
"""

from __future__ import annotations

import os

import click
import pytest
from click.testing import CliRunner

from edgekit.cli import COMMANDS, cli, run
from edgekit.cli.params import CORES_MULTIPLE, OVERSUBSCRIBED_MAX, Number, Warmup

CORES = os.cpu_count() or 1


def invoke(*args: str) -> tuple[int, str, str]:
    """`edgekit ARGS` in this process: (exit code, stdout, stderr). A bug raises."""
    with CliRunner().isolation() as (out, err, _):
        code = run(list(args))
    return code, out.getvalue().decode(), err.getvalue().decode()


def assert_one_sentence(code: int, out: str, err: str, *fragments: str) -> None:
    """The in-process twin of conftest.assert_user_error."""
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    lines = [ln for ln in err.splitlines() if ln.startswith("edgekit: error:")]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def commands() -> list[tuple[str, click.Command]]:
    """Every command and subcommand of the CLI, as ('profiles show', command)."""
    found: list[tuple[str, click.Command]] = []
    ctx = click.Context(cli)
    for name in COMMANDS:
        cmd = cli.get_command(ctx, name)
        assert cmd is not None
        if isinstance(cmd, click.Group):
            found += [(f"{name} {sub}", c) for sub, c in sorted(cmd.commands.items())]
        else:
            found.append((name, cmd))
    return found


def is_numeric(param: click.Parameter) -> bool:
    """Does this parameter take a number (whatever type it was declared with)?"""
    return isinstance(
        param.type, (Number, Warmup, click.types.IntParamType, click.types.FloatParamType)
    )


# The cases, and the rest of the families: (argv after the model, fragments).
MODEL = "no-such-model.onnx"  # the range is checked before the model is even looked for
OUT_OF_RANGE = [
    (["bench", MODEL, "--threads", "99999999999999999999"], ["--threads", "99999999999999999999", f"1..{CORES_MULTIPLE * CORES}", "--allow-oversubscribe"]),
    (["bench", MODEL, "--threads", "100000"], ["--threads", "100000", f"{CORES} logical cores"]),
    (["bench", MODEL, "--threads", "0"], ["--threads 0 must be at least 1"]),
    (["bench", MODEL, "--processes", "100000"], ["--processes", "100000", "1..64"]),
    (["bench", MODEL, "--seed", "-1"], ["--seed -1 must not be negative", "0..4294967295"]),
    (["bench", MODEL, "--seed", str(2**32)], ["--seed", str(2**32), "0..4294967295"]),
    (["bench", MODEL, "--batch", "0"], ["--batch 0 must be at least 1"]),
    (["bench", MODEL, "--min-time", "-1"], ["--min-time -1.0 must not be negative"]),
    (["bench", MODEL, "--min-time", "nan"], ["--min-time nan is not a finite number"]),
    (["bench", MODEL, "--max-time", "-1"], ["--max-time -1.0 must be positive"]),
    (["bench", MODEL, "--max-time", "inf"], ["--max-time inf is not a finite number"]),
    (["bench", MODEL, "--max-time", "0"], ["--max-time 0.0 must be positive"]),
    (["bench", MODEL, "--min-runs", "-5"], ["--min-runs -5 must be at least 1"]),
    (["bench", MODEL, "--min-runs", "10000001"], ["--min-runs", "1..1000000"]),
    (["bench", MODEL, "--warmup", "-3"], ["--warmup -3"]),
    (["bench", MODEL, "--warmup", "1e999s"], ["--warmup inf is not a finite number"]),
    (["bench", MODEL, "--warmup", "soon"], ["--warmup 'soon' is not a number of runs"]),
    (["bench", MODEL, "--concurrency", "0"], ["--concurrency 0 must be at least 1"]),
    (["bench", MODEL, "--concurrency", "99999"], ["--concurrency", "99999", "--allow-oversubscribe"]),
    (["bench", MODEL, "--batch", "1.5"], ["--batch '1.5' is not a whole number"]),
    (["compare", "a.json", "b.json", "--seed", "-1"], ["--seed -1"]),
    (["convert", MODEL, "--to", "onnx", "--out", "x.onnx", "--tolerance", "nan"], ["--tolerance nan"]),
    (["deploy", MODEL, "--profile", "x86-avx2", "--out", "b", "--tolerance", "-1"], ["--tolerance -1.0 must be positive"]),
    (["eval", __file__, "--dataset", "digits", "--threads", "100000"], ["--threads", "100000"]),
    (["eval", __file__, "--dataset", "digits", "--batch-size", "0"], ["--batch-size 0"]),
    (["optimize", MODEL, "-p", "x86-avx2", "-o", "o", "--prune", "1.5"], ["--prune must be in (0, 1), got 1.5"]),
    (["optimize", MODEL, "-p", "x86-avx2", "-o", "o", "--max-accuracy-drop", "-1"], ["--max-accuracy-drop -1.0 must not be negative"]),
    (["optimize", MODEL, "-p", "x86-avx2", "-o", "o", "--threads", "100000"], ["--threads", "100000"]),
    (["optimize", MODEL, "-p", "x86-avx2", "-o", "o", "--epochs", "-1"], ["--epochs -1 must be at least 1"]),
    (["train", "--recipe", "cnn", "--dataset", "digits", "--out", "t", "--dropout", "1.5"], ["--dropout must be in [0, 1)"]),
    (["train", "--recipe", "cnn", "--dataset", "digits", "--out", "t", "--lr", "inf"], ["--lr inf"]),
    (["train", "--recipe", "cnn", "--dataset", "digits", "--out", "t", "--seed", "-7"], ["--seed -7"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "fragments"), OUT_OF_RANGE, ids=[" ".join(a[:1] + a[-2:]) for a, _ in OUT_OF_RANGE]
)
def test_out_of_range_is_one_sentence(tmp_path, monkeypatch, argv: list[str], fragments: list[str]) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)  # nothing is written, but if it were, it would land here
    assert_one_sentence(*invoke(*argv), *fragments)
    assert os.listdir(tmp_path) == []


def test_the_cli_prints_the_range_sentence_and_exits_2(tmp_path) -> None:
    """The same through `python -m edgekit`, as a user runs it (main, not run)."""
    from tests.conftest import assert_user_error, run_cli

    result = run_cli("bench", "model.onnx", "--threads", "100000", cwd=tmp_path)
    assert_user_error(result, "--threads", "100000", f"{CORES} logical cores")


def test_every_numeric_option_declares_its_range() -> None:
    """One place: no numeric option is a bare int/float that click would take unbounded."""
    bare = [
        f"{name} {max(p.opts, key=len)}"
        for name, cmd in commands()
        for p in cmd.params
        if is_numeric(p) and not isinstance(p.type, (Number, Warmup))
    ]
    # convert --opset belongs to the ONNX-opset work (issue 16), which states its range.
    assert set(bare) <= {"convert --opset"}, bare


def test_every_range_is_finite_and_in_the_help() -> None:
    for name, cmd in commands():
        for p in cmd.params:
            if isinstance(p.type, Number):
                low, high, _ = p.type.bounds(None)
                assert low is not None, (name, p.opts)
                metavar = p.type.get_metavar(p, None)
                assert metavar == p.type.describe().replace(" ", "")
    code, out, _ = invoke("bench", "--help")
    assert code == 0 and f"--threads 1..{CORES_MULTIPLE * CORES}" in out
    assert "--seed 0..4294967295" in out and "--max-time (0,86400]s" in out


@pytest.mark.parametrize("order", ["flag-first", "flag-last"])
def test_allow_oversubscribe_lifts_the_cap_in_any_order(order: str) -> None:
    over = str(CORES_MULTIPLE * CORES + 1)
    argv = ["--allow-oversubscribe", "--threads", over]
    argv = argv if order == "flag-first" else argv[1:] + argv[:1]
    ctx = cli.get_command(click.Context(cli), "bench").make_context("bench", ["m.onnx", *argv])
    assert ctx.params["threads"] == int(over)
    code, out, err = invoke("bench", "m.onnx", *argv[:-1] if order == "flag-last" else argv[1:])
    assert_one_sentence(code, out, err, "--allow-oversubscribe")
    limit = str(OVERSUBSCRIBED_MAX + 1)
    code, out, err = invoke("bench", "m.onnx", "--allow-oversubscribe", "--threads", limit)
    assert_one_sentence(code, out, err, f"1..{OVERSUBSCRIBED_MAX}", limit)


def test_in_range_values_reach_the_command_converted() -> None:
    ctx = cli.get_command(click.Context(cli), "bench").make_context(
        "bench", ["m.onnx", "--warmup", "1.5s", "--min-time", "0.5", "--seed", str(2**32 - 1)]
    )
    assert ctx.params["warmup"] == 1.5 and ctx.params["min_time"] == 0.5
    assert ctx.params["seed"] == 2**32 - 1
    ctx = cli.get_command(click.Context(cli), "bench").make_context(
        "bench", ["m", "--warmup", "20"]
    )
    assert ctx.params["warmup"] == 20 and isinstance(ctx.params["warmup"], int)
