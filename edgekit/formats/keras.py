"""Keras reader (.keras archive or legacy .h5), loaded with safe_mode unless trusted."""

from __future__ import annotations

from collections import Counter
from typing import Any

from edgekit.errors import ModelError, UnsupportedModelError
from edgekit.formats import ModelInfo
from edgekit.model import Model, Signature, TensorSpec


def load_keras(model: Model) -> Any:
    """Load the Keras model; safe_mode refuses embedded code unless the user trusts the file."""
    import keras

    try:
        return keras.saving.load_model(
            str(model.path), compile=False, safe_mode=not model.trust_model
        )
    except ValueError as exc:
        text = str(exc)
        if "safe_mode" in text or "Lambda" in text or "lambda" in text:
            raise UnsupportedModelError(
                f"{model.path}: the model contains Python code (a Lambda layer or custom "
                "function), which edgekit does not run from an untrusted file; pass "
                "--trust-model if you trust where it came from"
            ) from None
        raise ModelError(
            f"{model.path}: Keras cannot load this model ({_first_line(text)})"
        ) from None
    except Exception as exc:  # h5py, zipfile and json errors on damaged files
        raise ModelError(
            f"{model.path}: Keras cannot load this model ({_first_line(str(exc))})"
        ) from None


def _first_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[0] if lines else "unknown error"


def _specs(tensors: list[Any], names: list[str]) -> tuple[TensorSpec, ...]:
    return tuple(
        TensorSpec(name, tuple(t.shape), str(getattr(t.dtype, "name", t.dtype)))
        for t, name in zip(tensors, names, strict=True)
    )


def read(model: Model) -> ModelInfo:
    km = load_keras(model)
    inputs = list(km.inputs)
    outputs = list(km.outputs)
    in_names = list(getattr(km, "input_names", None) or [t.name for t in inputs])
    out_names = list(getattr(km, "output_names", None) or [t.name for t in outputs])
    ops = Counter(
        type(layer).__name__ for layer in km.layers if type(layer).__name__ != "InputLayer"
    )
    sig = Signature(_specs(inputs, in_names), _specs(outputs, out_names))
    return ModelInfo(sig, dict(ops), int(km.count_params()))
