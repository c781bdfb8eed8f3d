"""SavedModel reader: the serving signature, its graph's ops and its variables."""

from __future__ import annotations

from collections import Counter
from typing import Any

from edgekit.errors import ModelError
from edgekit.formats import ModelInfo
from edgekit.model import Model, Signature, TensorSpec

SERVING_KEY = "serving_default"


def load_savedmodel(model: Model) -> Any:
    import tensorflow as tf

    try:
        return tf.saved_model.load(str(model.path))
    except Exception as exc:  # TF raises many types for damaged folders
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"{model.path}: TensorFlow cannot load this SavedModel ({first})"
        ) from None


def serving_function(model: Model, loaded: Any) -> Any:
    sigs = loaded.signatures
    if SERVING_KEY in sigs:
        return sigs[SERVING_KEY]
    if len(sigs) == 1:
        return next(iter(sigs.values()))
    raise ModelError(
        f"{model.path}: the SavedModel has no '{SERVING_KEY}' signature "
        f"(it has {sorted(sigs) or 'none'})"
    )


def read(model: Model) -> ModelInfo:
    loaded = load_savedmodel(model)
    fn = serving_function(model, loaded)
    _, kwargs = fn.structured_input_signature
    inputs = tuple(
        TensorSpec(name, tuple(spec.shape.as_list()) if spec.shape.rank is not None else None,
                   spec.dtype.name)
        for name, spec in kwargs.items()
    )  # fmt: skip
    outputs = tuple(
        TensorSpec(name, tuple(spec.shape.as_list()) if spec.shape.rank is not None else None,
                   spec.dtype.name)
        for name, spec in fn.structured_outputs.items()
    )  # fmt: skip
    ops = Counter(op.type for op in fn.graph.get_operations()
                  if op.type not in ("Placeholder", "NoOp", "Identity"))  # fmt: skip
    params = sum(int(v.shape.num_elements() or 0) for v in fn.graph.variables)
    return ModelInfo(Signature(inputs, outputs), dict(ops), params)
