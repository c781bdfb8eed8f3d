"""keras -> savedmodel: Keras 3's own `model.export` (a serving_default signature)."""

from __future__ import annotations

from pathlib import Path

from edgekit.convert._common import quiet_tensorflow, reason
from edgekit.convert.graph import EdgeOptions
from edgekit.errors import UnsupportedModelError
from edgekit.model import Model


def export_keras(km: object, out: Path, input_shapes: dict[str, tuple[int, ...]]) -> None:
    """Export a loaded Keras model as a SavedModel; given shapes replace dynamic dims."""
    import tensorflow as tf

    if input_shapes:
        names = [t.name.split(":")[0] for t in km.inputs]  # type: ignore[attr-defined]
        specs = [
            tf.TensorSpec(input_shapes.get(n, tuple(t.shape)), t.dtype, name=n)
            for n, t in zip(names, km.inputs, strict=True)  # type: ignore[attr-defined]
        ]
        km.export(str(out), verbose=False, input_signature=specs)  # type: ignore[attr-defined]
    else:
        km.export(str(out), verbose=False)  # type: ignore[attr-defined]


def run(src: Model, out: Path, opts: EdgeOptions) -> Path:
    quiet_tensorflow()
    from edgekit.formats.keras import load_keras

    km = load_keras(src)
    try:
        export_keras(km, out, opts.input_shapes)
    except Exception as exc:  # TF/Keras raise many types while tracing
        raise UnsupportedModelError(
            f"{src.path}: Keras cannot export this model as a SavedModel: {reason(exc)}"
        ) from None
    return out
