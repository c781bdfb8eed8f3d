"""onnx -> tflite, the second path: onnx2torch, then litert-torch, in their tool environment.

onnx2torch imports torchvision, whose PyPI release needs a torch other than
edgekit's, so both run in the venv `edgekit.tools` manages ("onnx2torch"), as the
program `edgekit/tools/onnx2torch_tflite.py`. The graph is simplified first, as for
onnx2tf. The module is traced on generated inputs; the .tflite keeps ONNX's layout
(NCHW stays NCHW), and the conversion graph verifies it against ONNX Runtime.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from edgekit.convert.graph import EdgeOptions
from edgekit.convert.onnx_tflite import simplified
from edgekit.errors import UnsupportedModelError
from edgekit.model import Model

# A large model traces and converts for minutes; a hung one is stopped.
_TIMEOUT_S = 1800


def run(src: Model, out: Path, opts: EdgeOptions) -> Path:
    """The onnx -> tflite edge through onnx2torch and litert-torch (float32 only)."""
    import numpy as np

    from edgekit.inputs import generate_inputs
    from edgekit.tools import run_tool

    if opts.precision != "fp32":
        raise UnsupportedModelError(
            f"onnx2torch + litert-torch writes float32 only, not {opts.precision}"
        )
    with tempfile.TemporaryDirectory(prefix="edgekit-onnx2torch-") as tmp:
        work = Path(tmp)
        onnx_in = simplified(src, work)
        sample = work / "sample.npz"
        np.savez(sample, **generate_inputs(src.signature, shapes=opts.input_shapes)[0])
        made = work / "model.tflite"
        try:
            proc = run_tool("onnx2torch", [str(onnx_in), str(sample), str(made)], cwd=work,
                            timeout=_TIMEOUT_S)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise UnsupportedModelError(
                f"{src.path}: onnx2torch + litert-torch did not finish in {_TIMEOUT_S} s"
            ) from None
        if proc.returncode != 0 or not made.is_file():
            why = (proc.stderr.strip().splitlines() or ["it stopped without a message"])[-1]
            raise UnsupportedModelError(
                f"{src.path}: onnx2torch + litert-torch cannot convert this model: {why}"
            )
        made.replace(out)
    return out
