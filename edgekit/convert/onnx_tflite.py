"""onnx -> tflite: onnx2tf (PINTO0309), when it is installed.

onnx2tf turns NCHW into NHWC, so inputs and outputs of 4-D image models come out
transposed; the verifier matches layouts by shape. It is optional: its pinned
dependencies (an older TensorFlow and NumPy) do not install beside edgekit's, so
without it this edge reports a missing dependency and other paths are tried.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from edgekit.convert._common import quiet_tensorflow, reason, require
from edgekit.convert.graph import EdgeOptions
from edgekit.errors import UnsupportedModelError
from edgekit.model import Model

# onnx2tf fetches this sample-image file from GitHub for 3-channel image inputs
# (only to compare its own outputs); a local file of the same name stops the download.
_SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"


def run(src: Model, out: Path, opts: EdgeOptions) -> Path:
    require("onnx2tf", "onnx2tf")
    quiet_tensorflow()
    import numpy as np

    work = Path(tempfile.mkdtemp(prefix="edgekit-onnx2tf-"))
    cwd = os.getcwd()
    try:
        np.save(work / _SAMPLE, np.zeros((20, 128, 128, 3), np.float32))
        os.chdir(work)
        import onnx2tf

        kwargs = {}
        if opts.input_shapes:
            kwargs["overwrite_input_shape"] = [
                f"{k}:{','.join(map(str, v))}" for k, v in opts.input_shapes.items()
            ]
        with contextlib.redirect_stdout(open(os.devnull, "w")):  # noqa: SIM115
            onnx2tf.convert(
                input_onnx_file_path=str(src.path.resolve()),
                output_folder_path=str(work / "out"),
                non_verbose=True,
                **kwargs,
            )
        made = sorted((work / "out").glob("*_float32.tflite"))
        if opts.precision == "fp16":
            made = sorted((work / "out").glob("*_float16.tflite")) or made
        if not made:
            raise RuntimeError("onnx2tf wrote no .tflite file")
        shutil.copyfile(made[0], out)
    except (UnsupportedModelError, SystemExit) as exc:
        if isinstance(exc, SystemExit):
            raise UnsupportedModelError(
                f"{src.path}: onnx2tf cannot convert this model (it stopped with code {exc.code})"
            ) from None
        raise
    except Exception as exc:  # onnx2tf raises whatever its op handlers raise
        raise UnsupportedModelError(
            f"{src.path}: onnx2tf cannot convert this model: {reason(exc)}"
        ) from None
    finally:
        os.chdir(cwd)
        shutil.rmtree(work, ignore_errors=True)
    return out
