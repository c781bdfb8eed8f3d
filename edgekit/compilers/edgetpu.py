"""The Coral Edge TPU compiler (`edgetpu_compiler`): its log's op mapping, for the manifest.

With ``--show_operations`` it prints a table of op, count and status ("Mapped to Edge
TPU", or why an op stays on the CPU); those rows are its own account, kept as they are.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgekit.profiles import Profile

__all__ = ["check", "figures"]

_ROW = re.compile(r"^(\w+)\s+(\d+)\s+(.+?)\s*$")


def figures(stage: Path, entry: str, stdout: str) -> dict[str, Any]:
    """Ops mapped to the Edge TPU and those left on the CPU, from the compiler's op table."""
    tpu, cpu = 0, []
    for line in stdout.splitlines():
        row = _ROW.match(line.strip())
        if not row or row.group(1) == "Operator":
            continue
        op, count, status = row.group(1), int(row.group(2)), row.group(3)
        if "Mapped to Edge TPU" in status:
            tpu += count
        else:
            cpu.append({"op": op, "count": count, "reason": status})
    return {"kind": "compiler log (edgetpu_compiler), not a measurement", "tpu_ops": tpu,
            "cpu_ops": sum(c["count"] for c in cpu), "cpu_operators": cpu}  # fmt: skip


def check(fig: dict[str, Any], profile: Profile) -> None:
    """The Edge TPU streams parameters beyond its SRAM from the host: no hard limit to check."""
