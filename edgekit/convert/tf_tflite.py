"""keras/savedmodel -> tflite: TensorFlow's TFLiteConverter (builtin ops only).

Keras models go through a temporary SavedModel, which keeps the input names the
user gave the Keras inputs. fp16 stores weights in float16 (the converter's
float16 target); int8 is the optimize pass's job, not this edge's.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from edgekit.convert._common import quiet_tensorflow, reason
from edgekit.convert.graph import EdgeOptions
from edgekit.errors import UnsupportedModelError
from edgekit.model import Model


def explain(exc: BaseException) -> str:
    """Name the ops the converter could not map, when it says which."""
    text = str(exc)
    ops = sorted(set(re.findall(r"'(tf\.\w+)' op", text)))
    if ops:
        return f"ops not supported by TFLite builtins: {', '.join(ops)}"
    return reason(exc)


def run(src: Model, out: Path, opts: EdgeOptions) -> Path:
    quiet_tensorflow()
    import tensorflow as tf

    tmp = None
    try:
        if str(src.format) == "keras":
            from edgekit.convert.keras_savedmodel import export_keras
            from edgekit.formats.keras import load_keras

            tmp = Path(tempfile.mkdtemp(prefix="edgekit-sm-"))
            export_keras(load_keras(src), tmp / "sm", opts.input_shapes)
            sm_path = tmp / "sm"
        else:
            sm_path = src.path
        converter = tf.lite.TFLiteConverter.from_saved_model(str(sm_path))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if opts.precision == "fp16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        data = converter.convert()
    except UnsupportedModelError:
        raise
    except Exception as exc:  # ConverterError, ValueError, and TF's assorted types
        raise UnsupportedModelError(
            f"{src.path}: TFLiteConverter cannot convert this model: {explain(exc)}"
        ) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    out.write_bytes(data)
    return out
