"""What this machine can do for each profile: which of its numbers are the target's own.

For a profile, three questions: is the target's compiler here (Vela: a real compile whose
figures are its estimates), is the target's runtime here (TFLite Micro's interpreter and
planner are the microcontroller's own; a desktop runtime on the profile's arch and CPU is
the target's too), and so whose are the latencies (the target's, this host's, or none).
Answered from installed packages and tools only: nothing here imports a framework.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgekit.profiles import Profile

__all__ = ["TargetSupport", "target_support", "targets"]

# Runtimes that are the target's own code running here, and what that makes exact.
_OWN_RUNTIME_FIGURES = {
    "tflite-micro": "op support, tensor arena (TFLM's planner), outputs (reference kernels)",
}

# Runtimes whose own C++ runs here as on the target, with this host's kernels: what that
# makes exact, and whose the times are (on the target's arch they are the target's).
_SAME_RUNTIME_FIGURES = {
    "executorch": ("program loading, XNNPACK delegation, outputs",
                   "host (ExecuTorch XNNPACK on this CPU, not the device's time)"),
}  # fmt: skip


@dataclass(frozen=True)
class TargetSupport:
    """One profile's answer: `compile`, `runtime` and `timing` are short phrases;
    `own_figures` says which numbers are the target's (or its compiler's) own."""

    profile: str
    compile: str
    runtime: str
    timing: str
    own_figures: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _compile(profile: Profile) -> tuple[str, str | None]:
    from edgekit.compilers import find_tool

    if profile.compiler is None:
        return "none needed", None
    name = profile.compiler.name
    if find_tool(profile.compiler.command[0]) is not None:
        return f"real ({name})", f"{name}'s estimates"
    return f"{name} not installed: the model is left ready for it", None


def target_support(profile: Profile, machine_arch: str | None = None) -> TargetSupport:
    """What this machine (or one of `machine_arch`) can do for `profile`."""
    from edgekit.deploy.host import machine_arch as this_arch
    from edgekit.runtimes import RUNTIMES, get_runtime

    arch = machine_arch or this_arch()
    compile_, compiler_figures = _compile(profile)
    own: list[str] = [compiler_figures] if compiler_figures else []
    name = profile.runtime
    rt = get_runtime(name) if name in RUNTIMES else None
    if rt is None or not rt.available():
        extra = f"pip install 'edgekit[{rt.extra}]'" if rt is not None else "no edgekit runtime"
        runtime, timing = f"{name} not installed ({extra})", "none"
    elif name in _OWN_RUNTIME_FIGURES:
        runtime = f"real ({name}, the target's own interpreter)"
        timing = "host (reference kernels, not the device's time)"
        own.append(_OWN_RUNTIME_FIGURES[name])
    elif arch == profile.arch and profile.device == "CPU":
        runtime, timing = f"real ({name} on {arch} CPU)", "target"
        own.append("latency, outputs")
    elif name in _SAME_RUNTIME_FIGURES:
        figures, timing = _SAME_RUNTIME_FIGURES[name]
        runtime = f"real ({name}, the target's runtime, on this {arch} CPU)"
        own.append(figures)
    else:
        runtime = f"host stand-in ({name} on this {arch} CPU)"
        timing = "host only"
    return TargetSupport(profile.name, compile_, runtime, timing, "; ".join(own) or "none")


def targets(machine_arch: str | None = None) -> list[TargetSupport]:
    """`target_support` for every profile found by name, sorted by name."""
    from edgekit.profiles import list_profiles

    return [target_support(p, machine_arch) for p in list_profiles()]
