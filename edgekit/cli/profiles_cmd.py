"""`edgekit profiles`: list and show hardware profiles (data only; loads no framework)."""

from __future__ import annotations

from typing import Any

import click

from edgekit.cli._common import echo_json
from edgekit.profiles import Profile, format_bytes, list_profiles, load_profile


def _as_json(profile: Profile) -> dict[str, Any]:
    data = profile.to_dict()
    data["path"] = str(profile.path) if profile.path else None
    return data


def _show_value(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) and not value:
        return "(none)"
    if isinstance(value, list):
        return " ".join(map(str, value)) if key == "command" else ", ".join(map(str, value))
    if isinstance(value, int) and key.endswith("_bytes"):
        return f"{value} ({format_bytes(value)})"
    return str(value)


@click.group("profiles")
def profiles_command() -> None:
    """List and show hardware target profiles.

    Shipped profiles live in the repository's profiles/ folder; EDGEKIT_PROFILE_PATH
    adds folders of your own (searched first).

    Example: edgekit profiles show rpi4 --json
    """


@profiles_command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def list_command(as_json: bool) -> None:
    """List every profile: name, arch, runtime, device, format, precision, description.

    Example: edgekit profiles list --json
    """
    profiles = list_profiles()
    if as_json:
        echo_json([_as_json(p) for p in profiles])
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    # Below ~110 columns (a pipe is 80) the descriptions would squeeze the data to nothing.
    wide = console.width >= 110
    table = Table(title="edgekit hardware profiles", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("name", "arch", "runtime", "device", "format"):
        table.add_column(column, no_wrap=True)
    table.add_column("precision")
    if wide:
        table.add_column("description", min_width=30)
    else:
        table.caption = "Descriptions: edgekit profiles show NAME, or a wider terminal."
    for p in profiles:
        row = [p.name, p.arch, p.runtime, p.device_label, p.format, ", ".join(p.precision)]
        table.add_row(*row, *([p.summary] if wide else []))
    console.print(table)


@profiles_command.command("show")
@click.argument("name_or_path")
@click.option("--json", "as_json", is_flag=True, help="Print the profile as JSON.")
def show_command(name_or_path: str, as_json: bool) -> None:
    """Show one profile, by shipped name or from the path of your own .toml file.

    Example: edgekit profiles show ./my-board.toml
    """
    profile = load_profile(name_or_path)
    data = _as_json(profile)
    if as_json:
        echo_json(data)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"profile {profile.name}", show_header=False)
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("value")
    for key in ("description", "source", "path"):
        table.add_row(key, str(data[key]))
    for section in ("target", "quantization", "compiler", "limits"):
        for key, value in data.get(section, {}).items():
            table.add_row(f"{section}.{key}", _show_value(key, value))
    Console().print(table)
