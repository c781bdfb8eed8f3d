"""The environment fingerprint of a report, and the checks made before measuring.

Nothing here imports a framework: package versions come from
importlib.metadata, CPU facts from `edgekit.devices`.
"""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from edgekit import devices

# Distributions whose versions change what a benchmark measures.
PACKAGES = (
    "numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "openvino", "ai-edge-litert",
    "tensorflow", "keras", "nncf", "tf2onnx",
)  # fmt: skip


def package_versions() -> dict[str, str | None]:
    """Installed version of each package in PACKAGES (None when absent); imports none of them."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def load_avg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def fingerprint() -> dict[str, Any]:
    """Facts about this machine that a report must carry to be comparable."""
    c = devices.cpu()
    return {
        "cpu_model": c["model"],
        "arch": c["arch"],
        "cores_logical": c["cores_logical"],
        "isa_features": c["isa_features"],
        "memory_bytes": devices.memory_bytes(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "governor": devices.governor(),
        "load_avg": load_avg(),
        "hostname": platform.node(),
        "packages": package_versions(),
    }


def check(env: dict[str, Any]) -> list[str]:
    """Warnings about a machine that will not give steady numbers (busy, frequency scaling)."""
    warnings = []
    cores = env.get("cores_logical") or 1
    load = env.get("load_avg")
    if load and load[0] > 0.5 * cores:
        warnings.append(
            f"the machine is busy: 1-minute load average {load[0]:.2f} is above half of its "
            f"{cores} logical cores; latencies will be noisy"
        )
    gov = env.get("governor")
    if gov is None:
        warnings.append(
            "the CPU frequency governor cannot be read (virtual machine or container?); "
            "frequency scaling is not under control"
        )
    elif gov != "performance":
        warnings.append(
            f"the CPU frequency governor is '{gov}', not 'performance'; "
            "the clock may change during the run"
        )
    return warnings


def rss_bytes() -> int | None:
    """Resident set size of this process now."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # psutil missing or unsupported platform
        return None


def peak_rss_bytes() -> int | None:
    """Peak resident set size of this process so far (ru_maxrss)."""
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)
    except (ImportError, OSError):
        return None
