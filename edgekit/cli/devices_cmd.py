"""`edgekit devices`."""

from __future__ import annotations

import click

from edgekit.cli._common import console, echo_json


@click.command("devices")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def devices_command(as_json: bool) -> None:
    """Show this machine's CPU features, memory, runtimes, providers and accelerators.

    Example: edgekit devices --json
    """
    from edgekit.devices import describe

    info = describe()
    if as_json:
        echo_json(info)
        return
    from rich.table import Table

    out = console()
    c = info["cpu"]
    mem = info["memory_bytes"]
    out.print(f"[bold]CPU[/bold] {c['model']} ({c['arch']}, {c['cores_logical']} logical cores)")
    out.print(f"ISA: {' '.join(c['isa_features']) or 'none detected'}")
    out.print(f"bf16 in hardware: {'yes' if c.get('bf16') else 'no'}")
    out.print(f"memory: {mem / 2**30:.1f} GiB" if mem else "memory: unknown")
    out.print(f"OS: {info['os']}  python {info['python']}  governor: {info['governor'] or 'n/a'}")
    table = Table(title="Runtimes")
    for col in ("runtime", "version", "devices / providers"):
        table.add_column(col)
    for name, r in info["runtimes"].items():
        devs = r.get("devices") or r.get("providers") or []
        table.add_row(name, r["version"] or "[red]not installed[/red]", ", ".join(devs))
    out.print(table)
    out.print(f"GPUs: {', '.join(info['gpus']) or 'none seen'}")
