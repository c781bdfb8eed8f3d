"""The README written into a bundle: how to run it on the target, and any compiler step."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgekit.profiles import Profile

__all__ = ["bundle_readme"]


def _compiler_section(profile: Profile, entry: str) -> list[str]:
    assert profile.compiler is not None
    argv = profile.compiler.argv(entry, ".")
    tool = argv[0]
    return [
        f"## Compile with {profile.compiler.name}",
        "",
        f"`{tool}` was not run here" + ("" if shutil.which(tool) else " (it is not on PATH)")
        + "; run it on a machine that has it (Linux x86-64), in this folder:",
        "",
        "```",
        " ".join(argv),
        "```",
        "",
        "It writes `model_edgetpu.tflite`; point `run.py --model` at that file and load it "
        "with the Edge TPU delegate (`libedgetpu`).",
        "",
    ]  # fmt: skip


def _tflite_micro_section(entry: str) -> list[str]:
    return [
        "## TensorFlow Lite for Microcontrollers",
        "",
        "Embed the model as a C array and size the tensor arena from the manifest's",
        "`limits_checked.arena_bytes_estimate` (add headroom):",
        "",
        "```",
        f"xxd -i {entry} > model_data.cc",
        "```",
        "",
        "`run.py` runs the same model with LiteRT on a host for checking outputs.",
        "",
    ]


# Profile runtimes whose target needs a step of its own after the bundle is copied over.
_RUNTIME_SECTIONS: dict[str, Callable[[str], list[str]]] = {
    "tflite-micro": _tflite_micro_section,
}


def bundle_readme(profile: Profile, entry: str, requirement: dict[str, Any], precision: str) -> str:
    """The bundle's README.md for `profile`, whose model file is `entry`, made at `precision`;
    `requirement` is the runtime's `bundle_requirement`."""
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
        lines += _compiler_section(profile, entry)
    section = _RUNTIME_SECTIONS.get(profile.runtime)
    if section is not None:
        lines += section(entry)
    lines += [f"Runtime requirement: `{requirement['requirement']}`.", ""]
    return "\n".join(lines)
