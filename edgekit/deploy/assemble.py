"""Writing a bundle's files into the folder being built: the model, run.py, requirements,
README, the compiler's outputs, and the manifest that checksums them all."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.deploy.bundle import MANIFEST
from edgekit.errors import BundleError
from edgekit.model import Model, sha256_file
from edgekit.outputs import MARKER

if TYPE_CHECKING:
    from edgekit.profiles import Profile

__all__ = ["archive_bundle", "check_out_folder", "copy_model", "hash_files", "run_compiler",
           "same_format_copy", "write_runner", "writes_fp16"]  # fmt: skip

RUNNER = Path(__file__).with_name("runner.py")


def copy_model(model: Model, folder: Path) -> list[str]:
    """Copy every file of `model` into `folder` as ``model.<suffix>``; return their names, the
    entry file first. A file sharing the entry's stem (an IR's .bin) is renamed with it; any
    other (ONNX external data, referenced by name) keeps its name."""
    names = []
    for f in model.files or [model.path]:
        same_stem = f == model.path or f.parent / f"{model.path.stem}{f.suffix}" == f
        name = f"model{f.suffix}" if same_stem else str(f.relative_to(model.path.parent))
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, folder / name)
        names.append(name)
    return names


def _onnx_fp16(src: Model, out: Path) -> Path:
    from edgekit.convert._common import onnx_to_fp16

    out = out / "model.onnx"
    onnx_to_fp16(src.path, out)
    return out


def _openvino_fp16(src: Model, out: Path) -> Path:
    import openvino as ov

    out = out / "model.xml"
    ov.save_model(ov.Core().read_model(str(src.path)), str(out), compress_to_fp16=True)
    return out


def _tflite_repair(src: Model, work: Path) -> tuple[Model, str] | None:
    from edgekit.verify import repaired_tflite

    fixed = repaired_tflite(src, work)
    if fixed is None:
        return None
    return fixed, ("1-D tensors' per-axis quantization axis set to 0 (LiteRT, OpenVINO and ONNX "
                   "Runtime refuse the original's)")  # fmt: skip


# A model already in the profile's format: how each format stores its weights in fp16, and
# which formats need a repair before a runtime accepts them.
_FP16_WRITERS: dict[str, Callable[[Model, Path], Path]] = {
    "onnx": _onnx_fp16,
    "openvino": _openvino_fp16,
}
_REPAIRS: dict[str, Callable[[Model, Path], tuple[Model, str] | None]] = {
    "tflite": _tflite_repair,
}


def writes_fp16(fmt: str) -> bool:
    """Whether a model already in `fmt` can be stored in fp16 without its Keras source."""
    return fmt in _FP16_WRITERS


def same_format_copy(src: Model, precision: str, work: Path) -> tuple[Model, list[str]]:
    """The source, already in the profile's format, as the bundle will hold it: repaired when
    a runtime would refuse it, and stored in fp16 when asked and the format can."""
    from edgekit.model import load

    notes: list[str] = []
    fmt = str(src.format)
    out = work / "same-format"
    out.mkdir()
    repair = _REPAIRS.get(fmt)
    repaired = repair(src, work) if repair is not None else None
    if repaired is not None:
        src, note = repaired
        notes.append(note)
    writer = _FP16_WRITERS.get(fmt) if precision == "fp16" else None
    if writer is not None:
        return load(writer(src, out)), notes
    if precision == "fp16":
        notes.append(f"a {fmt} source is kept as it is: fp16 needs the Keras or SavedModel source")
    entry = copy_model(src, out)[0]
    return load(out / entry), notes


def write_runner(folder: Path) -> None:
    """Put the standalone runner (this package's runner.py) into `folder` as run.py."""
    shutil.copyfile(RUNNER, folder / "run.py")


def hash_files(folder: Path) -> dict[str, str]:
    """sha256 of every file in the bundle but the manifest and the output marker."""
    return {
        str(p.relative_to(folder)): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in (MANIFEST, MARKER)
    }


def check_out_folder(out: Path) -> None:
    """Refuse an `out` that holds files edgekit did not write, naming some of them.

    A bundle's files are the ones its manifest lists; a bundle made before bundles
    carried the output marker gets it here, so that `atomic_dir` may replace it.
    """
    if not out.exists():
        return
    if not out.is_dir() or out.is_symlink():
        raise BundleError(f"{out}: exists and is not a folder; choose another --out")
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {MARKER}
    if not files:
        return
    ours: set[str] = set()
    try:
        old = json.loads((out / MANIFEST).read_text())
        if old.get("created_by") == "edgekit":
            ours = set(old.get("files", {})) | {MANIFEST}
    except (OSError, ValueError, AttributeError):
        pass
    others = files - ours
    if not ours or others:
        some = sorted(others)[:3]
        raise BundleError(
            f"{out}: exists and holds files edgekit did not write ({', '.join(some)}); "
            "choose an empty or new --out folder"
        )
    if not (out / MARKER).is_file():
        (out / MARKER).write_text(json.dumps({"writer": "edgekit"}) + "\n")


def archive_bundle(folder: Path, name: str, dest: Path) -> None:
    """Write `folder` as ``dest`` (.tar.gz) with every file under ``name/``, atomically."""
    tmp = dest.with_name(f".{dest.name}.edgekit-tmp")
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            for p in sorted(folder.rglob("*")):
                if p.is_file() and p.name != MARKER:
                    tar.add(p, arcname=f"{name}/{p.relative_to(folder)}", recursive=False)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def run_compiler(prof: Profile, stage: Path, entry: str, warnings: list[str]) -> dict[str, Any]:
    """Run the profile's compiler step in the bundle (`edgekit.compilers.run_compiler`)."""
    from edgekit.compilers import run_compiler as run

    return run(prof, stage, entry, warnings)
