"""A target's own compiler, run on the converted model: Vela for Ethos-U, edgetpu_compiler for
the Coral Edge TPU. What it says about the model (ops it placed on the accelerator and on the
CPU, memory, cycles) is reported as the compiler's estimate, never as a measurement.

A profile names its compiler in its ``[compiler]`` table; `COMPILERS` maps that name to the
module that reads the tool's output. A new compiler is a module with ``figures(stage,
entry, stdout) -> dict`` and ``check(figures, profile)`` plus one line here.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.errors import UnsupportedModelError

if TYPE_CHECKING:
    from edgekit.profiles import Profile

__all__ = ["COMPILERS", "compiler_figures", "find_tool", "run_compiler"]

COMPILERS: dict[str, str] = {
    "vela": "edgekit.compilers.vela",
    "edgetpu_compiler": "edgekit.compilers.edgetpu",
}


def find_tool(name: str) -> str | None:
    """The executable `name` on PATH, else beside this Python (a venv's bin), else None."""
    found = shutil.which(name)
    if found is not None:
        return found
    here = Path(sys.executable).parent / name
    return str(here) if here.is_file() else None


def _last_error(text: str) -> str:
    """The tool's own account of why: its first "Error:" line (and the reason under it),
    else its last line that says it failed, else its last line."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        if "Error: " in ln:
            why = ln[ln.rindex("Error: ") + len("Error: ") :]
            detail = lines[i + 1].lstrip("- ") if i + 1 < len(lines) else ""
            return f"{why} {detail}".strip() if detail.startswith(("IFM", "OFM")) else why
    failed = [ln for ln in lines if "failed" in ln.lower()]
    return (failed or lines or ["no output"])[-1]


def run_compiler(prof: Profile, stage: Path, entry: str, warnings: list[str]) -> dict[str, Any]:
    """Run `prof`'s compiler on `stage/entry`, in `stage`, and return what the manifest records:
    ``name``, ``command``, ``ran``, ``outputs`` (files it wrote), ``figures`` (its estimates,
    labelled so) and, where the tool is absent, ``note``: one sentence with the exact command.

    A compiler that fails is an UnsupportedModelError with its own last error line; figures
    over the profile's limits are a LimitError naming the limit.
    """
    assert prof.compiler is not None
    argv = prof.compiler.argv(entry, ".")
    info: dict[str, Any] = {"name": prof.compiler.name, "command": argv, "ran": False}
    tool = find_tool(argv[0])
    if tool is None:
        info["note"] = (f"{argv[0]} is not installed here, so the model is not compiled: it is "
                        f"ready for the compiler; run `{' '.join(argv)}` in the bundle")  # fmt: skip
        warnings.append(info["note"])
        return info
    before = {p.name for p in stage.iterdir()}
    proc = subprocess.run([tool, *argv[1:]], cwd=stage, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    if proc.returncode != 0:
        raise UnsupportedModelError(
            f"{argv[0]} failed on {entry}: {_last_error(proc.stderr + proc.stdout)}"
        )
    info["ran"] = True
    info["outputs"] = sorted({p.name for p in stage.iterdir()} - before)
    reader = COMPILERS.get(prof.compiler.name)
    if reader is not None:
        mod = importlib.import_module(reader)
        info["log"] = proc.stdout[-20000:]
        info["figures"] = mod.figures(stage, entry, proc.stdout)
        mod.check(info["figures"], prof)
        cpu = info["figures"].get("cpu_operators") or []
        if cpu:
            names = ", ".join(sorted({c["op"] for c in cpu}))
            warnings.append(f"{argv[0]} left {info['figures'].get('cpu_ops', len(cpu))} ops on "
                            f"the CPU ({names}); see manifest compiler.figures.cpu_operators")  # fmt: skip
    return info


def compiler_figures(prof: Profile, model: Path) -> dict[str, Any] | None:
    """The figures `prof`'s compiler gives for `model`, compiled in a throwaway folder (for
    comparing candidates); None where it has no compiler, the tool or its figures, or fails."""
    from edgekit.errors import EdgekitError

    if prof.compiler is None or prof.compiler.name not in COMPILERS:
        return None
    with tempfile.TemporaryDirectory(prefix="edgekit-compile-") as tmp:
        entry = f"model{model.suffix}"
        shutil.copyfile(model, Path(tmp) / entry)
        try:
            return run_compiler(prof, Path(tmp), entry, []).get("figures")
        except EdgekitError:  # over a limit or refused: the candidate is judged without it
            return None
