"""`edgekit tools`: list, install and remove the pinned environments of external tools."""

from __future__ import annotations

import click

from edgekit.cli._common import echo_json


@click.group("tools")
def tools_command() -> None:
    """Manage tool environments: pinned venvs for tools whose pins conflict with edgekit's.

    They live under EDGEKIT_TOOLS_DIR, else $XDG_CACHE_HOME/edgekit/tools, else
    ~/.cache/edgekit/tools, and are created on first use.

    Example: edgekit tools install onnx2tf
    """


@tools_command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of lines.")
def list_command(as_json: bool) -> None:
    """List every tool edgekit manages and the state of its environment.

    Example: edgekit tools list --json
    """
    from edgekit.tools import TOOLS, status

    rows = [status(name) for name in sorted(TOOLS)]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['tool']} {r['version']}  {r['state']}  {r['path']}")


@tools_command.command("install")
@click.argument("name")
@click.option("--force", is_flag=True, help="Recreate the environment even if it is ready.")
def install_command(name: str, force: bool) -> None:
    """Create the environment of tool NAME (pip, from the registry or its cache).

    Example: edgekit tools install onnx2tf
    """
    from edgekit.tools import install

    click.echo(str(install(name, force=force)))


@tools_command.command("remove")
@click.argument("name")
def remove_command(name: str) -> None:
    """Delete the environment of tool NAME.

    Example: edgekit tools remove onnx2tf
    """
    from edgekit.tools import remove

    click.echo(f"removed {name}" if remove(name) else f"{name}: no environment to remove")
