"""`import edgekit` and `edgekit --help` load no framework."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("tensorflow", "onnxruntime", "openvino", "nncf", "tf2onnx", "keras", "onnx", "torch")

PROBE = """
import sys
{body}
heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))
print('\\nHEAVY=' + ','.join(heavy))
"""


def _loaded(body: str) -> str:
    code = PROBE.format(body=body, heavy=HEAVY)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    (line,) = [ln for ln in result.stdout.splitlines() if ln.startswith("HEAVY=")]
    return line.removeprefix("HEAVY=")


def test_import_edgekit_is_light():
    assert _loaded("import edgekit, edgekit.errors, edgekit.model") == ""


@pytest.mark.parametrize(
    "argv", [["--help"], ["inspect", "--help"], ["train", "--help"], ["--version"]]
)
def test_help_is_light(argv):
    body = f"from edgekit.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
    assert _loaded(body) == ""


def test_every_command_has_help_with_an_example():
    import click

    from edgekit.cli import COMMANDS, LazyGroup, cli

    ctx = click.Context(cli)
    for name in COMMANDS:
        command = LazyGroup.get_command(cli, ctx, name)
        assert command is not None, name
        assert command.help and "Example" in command.help, name


def two_reports(folder):
    """Two real reports of one tiny ONNX model (written by `benchmark`), for `compare`."""
    import json

    from edgekit.bench import benchmark
    from tests.conftest import tiny_onnx

    model = tiny_onnx(folder / "tiny.onnx")
    paths = []
    for name in ("a.json", "b.json"):
        report = benchmark(model, threads=1, min_runs=50, min_time=0.05, warmup="0.01s")
        path = folder / name
        path.write_text(json.dumps(report.to_dict()))
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    return two_reports(tmp_path_factory.mktemp("reports"))


def _cli_body(argv):
    return f"from edgekit.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit as e:\n    assert not e.code, e.code"


def test_profiles_commands_are_light():
    assert _loaded(_cli_body(["profiles", "list"])) == ""
    assert _loaded(_cli_body(["profiles", "show", "rpi4"])) == ""


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "html"])
def test_compare_is_light(reports, fmt):
    assert _loaded(_cli_body(["compare", *reports, "--format", fmt])) == ""
