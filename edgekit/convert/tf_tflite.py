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
from edgekit.extras import require
from edgekit.model import Model


def explain(exc: BaseException) -> str:
    """Name the ops the converter could not map, when it says which."""
    text = str(exc)
    ops = sorted(set(re.findall(r"'(tf\.\w+)' op", text)))
    if ops:
        return f"ops not supported by TFLite builtins: {', '.join(ops)}"
    return reason(exc)


def _convert(src: Model, opts: EdgeOptions, shapes: dict[str, tuple[int, ...]]) -> bytes:
    tf = require("tensorflow")

    tmp = None
    try:
        if str(src.format) == "keras":
            from edgekit.convert.keras_savedmodel import export_keras
            from edgekit.formats.keras import load_keras

            tmp = Path(tempfile.mkdtemp(prefix="edgekit-sm-"))
            export_keras(load_keras(src), tmp / "sm", shapes)
            converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp / "sm"))
        elif shapes:
            loaded = tf.saved_model.load(str(src.path))
            fn = loaded.signatures["serving_default"]
            specs = {k: tf.TensorSpec(shapes.get(k, v.shape), v.dtype, name=k)
                     for k, v in fn.structured_input_signature[1].items()}  # fmt: skip
            concrete = tf.function(lambda **kw: fn(**kw)).get_concrete_function(**specs)
            converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], loaded)
        else:
            converter = tf.lite.TFLiteConverter.from_saved_model(str(src.path))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if opts.precision == "fp16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _batch_one(src: Model, shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """Given shapes plus batch 1 for inputs whose only dynamic dimension is the batch."""
    fixed = dict(shapes)
    for t in src.signature.inputs:
        if t.name in fixed or t.shape is None:
            continue
        if [i for i, d in enumerate(t.shape) if not isinstance(d, int)] == [0]:
            fixed[t.name] = (1, *t.shape[1:])  # type: ignore[arg-type]
    return fixed


def run(src: Model, out: Path, opts: EdgeOptions) -> Path:
    quiet_tensorflow()
    try:
        try:
            data = _convert(src, opts, opts.input_shapes)
        except Exception as exc:  # noqa: BLE001 - retried once below, then explained
            # Recurrent layers leave TensorList ops that TFLite lowers only for a known
            # batch size: retry with a dynamic batch fixed to 1.
            fixed = _batch_one(src, opts.input_shapes)
            if "TensorList" not in str(exc) or fixed == opts.input_shapes:
                raise
            data = _convert(src, opts, fixed)
    except UnsupportedModelError:
        raise
    except Exception as exc:  # ConverterError, ValueError, and TF's assorted types
        raise UnsupportedModelError(
            f"{src.path}: TFLiteConverter cannot convert this model: {explain(exc)}"
        ) from None
    out.write_bytes(data)
    return out
