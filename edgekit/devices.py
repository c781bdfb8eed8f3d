"""What this machine offers for inference: CPU features, memory, runtimes, accelerators.

The same facts form the environment fingerprint of every benchmark report.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from edgekit.vocab import normalize_arch

# CPU flags that decide which kernels a runtime can use.
ISA_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
    "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16",
    "neon", "asimd", "asimddp", "asimdhp", "sve", "sve2", "i8mm", "bf16",
)  # fmt: skip
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
# fp16 arithmetic in hardware (x86 AVX-512 FP16; Arm half-precision SIMD): elsewhere LiteRT
# and OpenVINO's CPU plugin run an fp16 model by converting it to fp32.
FP16_FLAGS = frozenset({"avx512_fp16", "asimdhp"})


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key not in info:
            info[key] = value.strip()
    return info


def cpu() -> dict[str, Any]:
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    return {
        "model": info.get("model name")
        or info.get("Hardware")
        or platform.processor()
        or "unknown",
        "arch": normalize_arch(),
        "cores_logical": os.cpu_count(),
        "isa_features": [f for f in ISA_FLAGS if f in flags],
        # bf16 dot products in hardware (x86 AVX-512 BF16 or AMX; Arm BF16): where
        # OpenVINO's CPU plugin runs fp32 models in bf16 (edgekit bench --inference-precision)
        "bf16": bool(flags & BF16_FLAGS),
    }


def memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def governor() -> str | None:
    try:
        return Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").read_text().strip()
    except OSError:
        return None


def gpus() -> list[str]:
    found = []
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False
            ).stdout
            found += [ln.strip() for ln in out.splitlines() if ln.strip()]
        except (OSError, subprocess.TimeoutExpired):
            pass
    dri = Path("/dev/dri")
    if dri.is_dir():
        found += [
            f"/dev/dri/{p.name}" for p in sorted(dri.iterdir()) if p.name.startswith("renderD")
        ]
    return found


def runtimes() -> dict[str, Any]:
    """Each runtime's version and the devices or providers it offers here."""
    from edgekit.runtimes import get_runtime, target_runtimes

    out = {}
    for name in target_runtimes():
        rt = get_runtime(name)
        entry: dict[str, Any] = {"installed": rt.available(), "version": rt.version()}
        if rt.available():
            entry[rt.device_key] = rt.devices()
        out[name] = entry
    return out


def describe() -> dict[str, Any]:
    """Everything `edgekit devices` shows."""
    return {
        "cpu": cpu(),
        "memory_bytes": memory_bytes(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "governor": governor(),
        "runtimes": runtimes(),
        "gpus": gpus(),
    }
