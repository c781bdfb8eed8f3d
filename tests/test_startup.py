"""`import edgekit` and `edgekit --help` load no framework."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("tensorflow", "onnxruntime", "openvino", "nncf", "tf2onnx", "keras", "onnx")

PROBE = """
import sys
{body}
heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))
print('HEAVY=' + ','.join(heavy))
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


@pytest.mark.parametrize("argv", [["--help"], ["inspect", "--help"], ["--version"]])
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
