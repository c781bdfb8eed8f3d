"""Structured pruning: remove whole conv filters and dense units by L1 norm, then rebuild
a smaller dense Keras model and fine-tune it.

Removing a layer's outputs shrinks whatever reads them: the next conv's input
channels, a BatchNormalization's statistics, a depthwise conv's channels, or, after a
Flatten, the matching rows of the Dense kernel. The walk follows one chain of layers
(Sequential or a functional model without branches); the last weighted layer keeps
all its outputs, so the model's outputs do not change shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgekit.errors import UnsupportedModelError
from edgekit.optimize.prune_magnitude import PruneResult, _loss_for

PRUNABLE = ("Conv1D", "Conv2D", "Dense")
# Layers that keep channels where they are.
PASS_THROUGH = (
    "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "Dropout",
    "SpatialDropout1D", "SpatialDropout2D", "Activation", "ReLU", "LeakyReLU", "ELU",
    "ZeroPadding1D", "ZeroPadding2D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "Cropping2D", "UpSampling2D",
)  # fmt: skip


def _chain(model: Any) -> list[Any]:
    """The model's layers in order, checking that each reads only the one before."""
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    if type(model).__name__ == "Sequential":
        return layers
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedModelError(
            f"structured pruning handles single-input, single-output models; "
            f"{model.name} has {len(model.inputs)} inputs and {len(model.outputs)} outputs."
        )
    prev = None
    for layer in layers:
        inbound = getattr(layer, "input", None)
        if isinstance(inbound, list | tuple):
            raise UnsupportedModelError(
                f"structured pruning follows a chain of layers, but layer '{layer.name}' "
                "merges branches; use --prune without --structured for this model."
            )
        src = inbound._keras_history[0] if hasattr(inbound, "_keras_history") else None
        if prev is not None and src is not prev:
            raise UnsupportedModelError(
                f"structured pruning follows a chain of layers, but layer '{layer.name}' "
                f"does not read layer '{prev.name}'; use --prune without --structured."
            )
        prev = layer
    return layers


def l1_keep(kernel: np.ndarray, sparsity: float) -> np.ndarray:
    """Indices of output channels to keep (largest L1 norm first kept), sorted."""
    n = kernel.shape[-1]
    keep = max(1, int(round(n * (1.0 - sparsity))))
    norms = np.abs(kernel).reshape(-1, n).sum(0)
    return np.sort(np.argsort(-norms, kind="stable")[:keep])


def plan(model: Any, sparsity: float | Mapping[str, float]) -> dict[str, np.ndarray]:
    """Which output channels each prunable layer keeps (the last weighted layer keeps all)."""
    layers = _chain(model)
    weighted = [layer for layer in layers if layer.get_weights()]
    last = weighted[-1] if weighted else None
    out = {}
    for layer in layers:
        if type(layer).__name__ not in PRUNABLE or layer is last:
            continue
        s = sparsity.get(layer.name, 0.0) if isinstance(sparsity, Mapping) else sparsity
        if s > 0:
            out[layer.name] = l1_keep(np.asarray(layer.kernel.numpy()), float(s))
    return out


def rebuild(model: Any, keep: Mapping[str, np.ndarray]) -> Any:
    """A new, smaller Keras model with only the kept channels, weights copied over."""
    import keras

    layers = _chain(model)
    inp = keras.Input(tuple(model.input_shape[1:]), name=model.inputs[0].name.split(":")[0])
    x = inp
    kept_in: np.ndarray | None = None  # channels of the current tensor that survive
    for layer in layers:
        kind = type(layer).__name__
        cfg = layer.get_config()
        weights = [np.asarray(w) for w in layer.get_weights()]
        if kind in PRUNABLE:
            kernel = weights[0]
            if kept_in is not None:
                kernel = np.take(kernel, kept_in, axis=-2)
            out_idx = keep.get(layer.name)
            if out_idx is not None:
                kernel = kernel[..., out_idx]
                cfg["filters" if "filters" in cfg else "units"] = len(out_idx)
            weights[0] = kernel
            if len(weights) > 1 and out_idx is not None:
                weights[1] = weights[1][out_idx]
            kept_in = out_idx
        elif kind == "BatchNormalization" and kept_in is not None:
            weights = [w[kept_in] for w in weights]
        elif kind == "DepthwiseConv2D" and kept_in is not None:
            if cfg.get("depth_multiplier", 1) != 1:
                raise UnsupportedModelError(
                    f"structured pruning cannot follow channels through '{layer.name}' "
                    "(depth_multiplier > 1)."
                )
            weights[0] = np.take(weights[0], kept_in, axis=2)
            if len(weights) > 1:
                weights[1] = weights[1][kept_in]
        elif kind == "Flatten" and kept_in is not None:
            shape = tuple(layer.input.shape[1:])
            idx = np.arange(int(np.prod(shape))).reshape(shape)
            kept_in = np.take(idx, kept_in, axis=-1).ravel()
            # Flatten is channels-last: kept indices keep their (h, w, c) order.
            kept_in = np.sort(kept_in)
        elif kind not in PASS_THROUGH and kept_in is not None:
            raise UnsupportedModelError(
                f"structured pruning cannot follow removed channels through layer "
                f"'{layer.name}' ({kind}); prune with --prune alone (unstructured)."
            )
        new = type(layer).from_config(cfg)
        x = new(x)
        if weights:
            new.set_weights(weights)
    return keras.Model(inp, x, name=model.name)


def prune_structured(
    model: Any,
    sparsity: float | Mapping[str, float],
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    *,
    epochs: int = 8,
    batch_size: int = 32,
    lr: float = 1e-3,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
) -> PruneResult:
    """Remove `sparsity` of the filters/units of each hidden conv and dense layer by L1
    norm, rebuild the smaller model and, when (x, y) are given, fine-tune it."""
    import keras

    values = list(sparsity.values()) if isinstance(sparsity, Mapping) else [sparsity]
    if not all(0.0 <= float(s) < 1.0 for s in values):
        raise UnsupportedModelError(f"pruning sparsity must be in [0, 1), got {sparsity}.")
    keep = plan(model, sparsity)
    small = rebuild(model, keep)
    hist: dict[str, list[float]] = {}
    if x is not None and y is not None and epochs > 0:
        steps = max(1, int(np.ceil(len(x) / batch_size))) * epochs
        sched = keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps, alpha=0.01)
        small.compile(keras.optimizers.Adam(sched), loss=_loss_for(model), metrics=["accuracy"])
        h = small.fit(
            x, y, batch_size=batch_size, epochs=epochs, verbose=0, validation_data=validation
        )
        hist = {k: [float(v) for v in vs] for k, vs in h.history.items()}
    fractions = {}
    for layer in _chain(model):
        if layer.name in keep:
            fractions[layer.name] = 1.0 - len(keep[layer.name]) / layer.kernel.shape[-1]
    return PruneResult(
        model=small,
        layer_sparsity=fractions,
        params_before=int(model.count_params()),
        params_after=int(small.count_params()),
        history=hist,
    )
