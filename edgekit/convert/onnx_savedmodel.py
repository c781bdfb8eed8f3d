"""onnx -> savedmodel: the SavedModel onnx2tf writes beside its .tflite files.

It is how an ONNX source reaches TFLite int8: the TFLite quantizer starts from a
SavedModel. Like onnx2tf's .tflite, it takes 4-D image inputs NHWC.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from edgekit.convert.graph import EdgeOptions
from edgekit.convert.onnx_tflite import onnx2tf
from edgekit.model import Model


def run(src: Model, out: Path, opts: EdgeOptions) -> Path:
    with tempfile.TemporaryDirectory(prefix="edgekit-onnx2tf-") as tmp:
        made = onnx2tf(src, opts, Path(tmp))
        shutil.copytree(made, out, ignore=shutil.ignore_patterns("*.tflite"))
    return out
