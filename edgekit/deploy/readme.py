"""The README written into a bundle: how to run it on the target, and any compiler step."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgekit.profiles import Profile

__all__ = ["bundle_readme"]


def _compiler_section(profile: Profile, entry: str, info: Mapping[str, Any] | None) -> list[str]:
    """What the compiler made here, or, where it was not run, that the model is ready for it."""
    assert profile.compiler is not None
    argv = profile.compiler.argv(entry, ".")
    name = profile.compiler.name
    if info is not None and info.get("ran"):
        fig = info.get("figures") or {}
        lines = [f"## Compiled with {name}", "",
                 f"`{' '.join(argv)}` ran when this bundle was made; it wrote "
                 f"{', '.join(f'`{o}`' for o in info.get('outputs', []))}."]  # fmt: skip
        if "cpu_ops" in fig:
            lines.append(f"Its estimates (manifest `compiler.figures`, the compiler's, not a "
                         f"measurement): {fig.get('cpu_ops')} ops left on the CPU.")  # fmt: skip
        return [*lines, ""]
    return [
        f"## Compile with {name}",
        "",
        f"The model is ready for {name} but was not compiled (`{argv[0]}` is not installed "
        "here); run it in this folder on a machine that has it:",
        "",
        "```",
        " ".join(argv),
        "```",
        "",
        *_COMPILER_NEXT.get(name, []),
    ]


# What to do with each compiler's output on the target.
_COMPILER_NEXT: dict[str, list[str]] = {
    "edgetpu_compiler": [
        "It writes `model_edgetpu.tflite`; point `run.py --model` at that file and load it "
        "with the Edge TPU delegate (`libedgetpu`).",
        "",
    ],
}


def _tflite_micro_section(entry: str) -> list[str]:
    return [
        "## TensorFlow Lite for Microcontrollers",
        "",
        "Embed the model as a C array and size the tensor arena from the manifest's",
        "`limits_checked.arena_bytes_tflm` (TFLM's own planner, where it ran) or",
        "`arena_bytes_estimate`:",
        "",
        "```",
        f"xxd -i {entry} > model_data.cc",
        "```",
        "",
        "`run.py` runs the same model with LiteRT on a host for checking outputs.",
        "",
    ]


def _executorch_section(entry: str) -> list[str]:
    return [
        "## ExecuTorch in an app",
        "",
        f"`{entry}` is an ExecuTorch program lowered to XNNPACK. On Android, load it with",
        "ExecuTorch's `Module.load(path)` from the `executorch-android` library; in C++, with",
        "`executorch::extension::Module` linked against the XNNPACK backend. Its inputs and",
        "outputs are the manifest's signature, in order (a program keeps no tensor names).",
        "",
    ]


# Profile runtimes whose target needs a step of its own after the bundle is copied over.
_RUNTIME_SECTIONS: dict[str, Callable[[str], list[str]]] = {
    "tflite-micro": _tflite_micro_section,
    "executorch": _executorch_section,
}


def bundle_readme(
    profile: Profile, entry: str, requirement: dict[str, Any], precision: str,
    compiler: Mapping[str, Any] | None = None,
) -> str:  # fmt: skip
    """The bundle's README.md for `profile`, whose model file is `entry`, made at `precision`;
    `requirement` is the runtime's `bundle_requirement`, `compiler` what `run_compiler` did."""
    lines = [
        f"# {profile.name} bundle",
        "",
        f"{profile.summary}. Model `{entry}` ({profile.format}, {precision}) for the "
        f"{profile.runtime} runtime on {profile.device_label}.",
        "",
        "## Run it on the target",
        "",
        "```",
        "python -m pip install -r requirements.txt",
        "python run.py --input input.npz --output output.npz",
        "```",
        "",
        "`run.py` checks every file's sha256 against `manifest.json` first. The input `.npz`",
        "holds one array per model input, named as in the manifest's signature (one unnamed",
        "array is fine for a single-input model); without `--input` it runs on random data.",
        "",
    ]
    if profile.compiler is not None:
        lines += _compiler_section(profile, entry, compiler)
    section = _RUNTIME_SECTIONS.get(profile.runtime)
    if section is not None:
        lines += section(entry)
    lines += [f"Runtime requirement: `{requirement['requirement']}`.", ""]
    return "\n".join(lines)
