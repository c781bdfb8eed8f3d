"""onnx -> tflite: onnx2tf (PINTO0309), run in its own tool environment.

onnx2tf pins an older TensorFlow, NumPy, onnx and ONNX Runtime than edgekit's, so
it runs as a subprocess in the venv `edgekit.tools` manages (created on first use).
The graph is simplified first (`onnx_simplify`): onnx2tf fails on weights computed
at run time and on old-IR graphs that list initializers as inputs. onnx2tf turns
NCHW into NHWC, so inputs and outputs of 4-D image models come out transposed; the
verifier matches layouts by shape. An input the graph itself transposes from NHWC keeps
its shape (`channels_last_inputs`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from edgekit.convert.graph import EdgeOptions
from edgekit.errors import EdgekitError, UnsupportedModelError
from edgekit.model import Model

# onnx2tf downloads this sample-image file from GitHub for 3-channel image inputs (only
# to check its own outputs). There is no network in many places edgekit runs, so a seeded
# file of the same name and shape is written into its working folder first.
_SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"
# A conversion of a large model takes minutes; a hung one is stopped.
_TIMEOUT_S = 1800


def run(src: Model, out: Path, opts: EdgeOptions) -> Path:
    """The onnx -> tflite edge: onnx2tf's float32 (or float16) .tflite."""
    with tempfile.TemporaryDirectory(prefix="edgekit-onnx2tf-") as tmp:
        made = onnx2tf(src, opts, Path(tmp))
        suffix = "_float16.tflite" if opts.precision == "fp16" else "_float32.tflite"
        found = sorted(made.glob(f"*{suffix}"))
        if not found:
            raise UnsupportedModelError(f"{src.path}: onnx2tf wrote no *{suffix} file")
        shutil.copyfile(found[0], out)
    return out


def simplified(src: Model, work: Path) -> Path:
    """`src` simplified into `work` (model.onnx) when onnxslim takes it, else `src` itself;
    the converter's result is verified against the source either way."""
    if src.files[1:]:  # a model with external weights goes as it is, beside its files
        return src.path.resolve()
    try:
        from edgekit.convert.onnx_simplify import simplify

        return simplify(src, work / "model.onnx", verify=False)
    except EdgekitError:
        return src.path.resolve()


def onnx2tf(src: Model, opts: EdgeOptions, work: Path) -> Path:
    """Run onnx2tf on `src` (simplified first) inside `work`; returns its output folder,
    a SavedModel with the .tflite files beside it."""
    import numpy as np

    from edgekit.tools import run_tool

    onnx_in = simplified(src, work)
    rng = np.random.default_rng(0)
    np.save(work / _SAMPLE, rng.random((20, 128, 128, 3), dtype=np.float32))
    made = work / "out"
    args = ["-i", str(onnx_in), "-o", str(made), "-n"]
    if keep := channels_last_inputs(onnx_in):
        args += ["-kat", *keep]
    if opts.input_shapes:
        args += ["-ois", *(f"{k}:{','.join(map(str, v))}" for k, v in opts.input_shapes.items())]
    try:
        proc = run_tool("onnx2tf", args, cwd=work, timeout=_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise UnsupportedModelError(
            f"{src.path}: onnx2tf did not finish in {_TIMEOUT_S} s"
        ) from None
    if proc.returncode != 0 or not (made / "saved_model.pb").is_file():
        raise UnsupportedModelError(
            f"{src.path}: onnx2tf cannot convert this model: {_why(proc.stdout, proc.stderr)}"
        )
    return made


def channels_last_inputs(path: Path) -> list[str]:
    """The 4-D inputs that the graph itself transposes NHWC -> NCHW before any other use
    (an image model that takes NHWC, as edgekit's PyTorch recipes do). onnx2tf reads every
    4-D input as NCHW and would transpose these a second time, so it is told to keep
    their shape."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {t.name for t in graph.initializer}
    keep = []
    for inp in graph.input:
        if inp.name in weights or len(inp.type.tensor_type.shape.dim) != 4:
            continue
        users = [n for n in graph.node if inp.name in n.input]
        perms = [
            list(a.ints) for n in users if n.op_type == "Transpose" for a in n.attribute
            if a.name == "perm"
        ]  # fmt: skip
        if users and len(perms) == len(users) and all(p == [0, 3, 1, 2] for p in perms):
            keep.append(inp.name)
    return keep


def _why(stdout: str, stderr: str) -> str:
    """The line of onnx2tf's output that says why it stopped (it prints errors on stdout too)."""
    import re

    from edgekit.convert._common import reason

    text = re.sub(r"\x1b\[[0-9;]*m", "", f"{stdout}\n{stderr}")
    # onnx2tf imports one module per ONNX op: a missing one is an op it does not convert.
    if m := re.search(r"No module named 'onnx2tf\.ops\.(\w+)'", text):
        return f"it has no conversion for the ONNX op {m.group(1)}"
    if m := re.search(r"'(tf\.\w+)' op is neither a custom op nor a flex op", text):
        return (f"the TensorFlow op {m.group(1)} it makes has no TFLite builtin (and flex ops "
                "are off)")  # fmt: skip
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # MLIR's closing "failed while converting: 'main'" names no op; an earlier line does.
    errors = [ln for ln in lines if re.search(r"Error|ERROR|error:", ln)
              and "failed while converting" not in ln] or [
        ln for ln in lines if re.search(r"Error|ERROR|error:", ln)]  # fmt: skip
    pick = errors[-1] if errors else (lines[-1] if lines else "it stopped without a message")
    return reason(RuntimeError(pick))
