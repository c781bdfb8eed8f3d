"""`edgekit targets`: for each profile, what this machine can do for it (loads no framework)."""

from __future__ import annotations

import click

from edgekit.cli._common import echo_json


@click.command("targets")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def targets_command(as_json: bool) -> None:
    """Show, per profile, whether this machine has the target's compiler and runtime, and so
    whose numbers a report gets: the target's own, a compiler's estimate, or this host's.

    Example: edgekit targets --json
    """
    from edgekit.targets import targets

    rows = targets()
    if as_json:
        echo_json([r.to_dict() for r in rows])
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(title="what this machine does for each profile", box=box.SIMPLE_HEAD,
                  pad_edge=False)  # fmt: skip
    for col in ("profile", "compile", "runtime", "timings", "target's own figures"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r.profile, r.compile, r.runtime, r.timing, r.own_figures)
    Console().print(table)
