"""Arm Vela (`ethos-u-vela`): read its summary CSV and its per-op placement for the manifest.

Vela compiles a full-int8 TFLite model for an Ethos-U NPU: the ops it can run become one
``ethos-u`` custom op in ``<stem>_vela.tflite``, the rest stay for the Cortex-M's TFLM.
Its summary CSV (``<stem>_summary_<system config>.csv``) holds its estimates of memory,
MACs, cycles and inference time at the system config's clock; ``--show-cpu-operations``
prints each op's placement. A profile's ``max_arena_bytes`` is checked against Vela's
SRAM figure and ``max_model_bytes`` against its flash plus DRAM figure.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.errors import LimitError

if TYPE_CHECKING:
    from edgekit.profiles import Profile

__all__ = ["check", "figures", "placement"]

# "   CPU: Passthrough = name (outputs [1, 1, 1, 16])" / "   NPU: Conv2D = name (...)"
_PLACED = re.compile(r"^\s*(CPU|NPU): (\S+) = (.*?)(?: \(outputs .*\))?\s*$")
_COUNT = re.compile(r"^(CPU|NPU) operators = (\d+)")
KIB = 1024


def placement(stdout: str) -> dict[str, Any]:
    """Vela's own op counts (after its lowering of TFLite ops into NPU operations) and the
    ops it left on the CPU, by op type and output tensor name, from its printout."""
    counts = {"NPU": 0, "CPU": 0}
    cpu: list[dict[str, str]] = []
    for line in stdout.splitlines():
        count = _COUNT.match(line)
        if count:
            counts[count.group(1)] = int(count.group(2))
        placed = _PLACED.match(line)
        if placed and placed.group(1) == "CPU":
            cpu.append({"op": placed.group(2), "tensor": placed.group(3)})
    return {"vela_npu_ops": counts["NPU"], "vela_cpu_ops": counts["CPU"], "cpu_operators": cpu}


def tflite_split(source: Path, compiled: Path) -> dict[str, Any]:
    """The split in TFLite ops: the source's ops, and those still outside the ``ethos-u``
    custom op in Vela's output model (the ones TFLM runs on the CPU)."""
    from edgekit.model import load

    total = sum(load(source).op_histogram.values())
    left = {op: n for op, n in load(compiled).op_histogram.items() if op != "ethos-u"}
    cpu = sum(left.values())
    return {"tflite_ops": total, "cpu_ops": cpu, "npu_ops": max(total - cpu, 0),
            "cpu_op_types": left}  # fmt: skip


def _summary_csv(stage: Path, entry: str) -> dict[str, str]:
    found = sorted(stage.glob(f"{Path(entry).stem}_summary_*.csv"))
    if not found:
        return {}
    with found[0].open(newline="") as f:
        rows = list(csv.DictReader(f))
    return rows[0] if rows else {}


def figures(stage: Path, entry: str, stdout: str) -> dict[str, Any]:
    """Vela's estimates for the model it compiled in `stage`, in bytes, cycles and ms."""
    row = _summary_csv(stage, entry)

    def num(key: str) -> float:
        try:
            return float(row.get(key, "") or 0)
        except ValueError:
            return 0.0

    out: dict[str, Any] = {
        "kind": "compiler estimate (Vela), not a measurement",
        **placement(stdout),
        **tflite_split(stage / entry, stage / f"{Path(entry).stem}_vela.tflite"),
        "accelerator": row.get("accelerator_configuration"),
        "system_config": row.get("system_config"),
        "memory_mode": row.get("memory_mode"),
        "clock_hz": num("core_clock"),
        "sram_bytes": round(num("sram_memory_used") * KIB),
        "dram_bytes": round(num("dram_memory_used") * KIB),
        "on_chip_flash_bytes": round(num("on_chip_flash_memory_used") * KIB),
        "off_chip_flash_bytes": round(num("off_chip_flash_memory_used") * KIB),
        "macs": int(num("nn_macs")),
        "cycles_npu": int(num("cycles_npu")),
        "cycles_total": int(num("cycles_total")),
        "inference_ms": num("inference_time") * 1000.0,
    }
    out["flash_bytes"] = out["off_chip_flash_bytes"] + out["on_chip_flash_bytes"]
    # where the weights live: flash on a Shared_Sram system, DRAM on a Dedicated_Sram one
    out["storage_bytes"] = out["flash_bytes"] + out["dram_bytes"]
    return out


def check(fig: dict[str, Any], profile: Profile) -> None:
    """Refuse figures over `profile`'s SRAM (max_arena_bytes) or flash (max_model_bytes)."""
    from edgekit.profiles import format_bytes

    lim = profile.limits
    for have, limit, key, what in (
        (fig["sram_bytes"], lim.max_arena_bytes, "max_arena_bytes", "SRAM"),
        (fig["storage_bytes"], lim.max_model_bytes, "max_model_bytes", "flash and DRAM"),
    ):
        if limit is not None and have > limit:
            raise LimitError(
                f"Vela places {format_bytes(have)} in {what}, over {profile.name}'s {key} of "
                f"{format_bytes(limit)}; use a smaller input shape or model, or a profile with "
                f"more {what}"
            )
