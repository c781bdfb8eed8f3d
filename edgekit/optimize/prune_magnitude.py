"""Unstructured magnitude pruning of Keras 3 models during fine-tuning.

A callback raises each prunable kernel's sparsity along a polynomial-decay schedule
(Zhu & Gupta 2017: s_t = s_f + (s_i - s_f)(1 - t/T)^3) and, after every training
step, zeroes the smallest-magnitude weights so the optimizer cannot grow them back.
The model is then "stripped": masks are already folded into the kernels, so what
comes back is a plain Keras model with zeros in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import UnsupportedModelError
from edgekit.optimize.base import Pass, PassConfig, PassResult

PRUNABLE = ("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D", "SeparableConv2D", "Dense")


def polynomial_sparsity(
    step: int, begin: int, end: int, final: float, initial: float = 0.0, power: float = 3.0
) -> float:
    """Sparsity at `step` of a schedule rising from `initial` (at begin) to `final` (at end)."""
    if step <= begin:
        return initial
    if step >= end:
        return final
    frac = (step - begin) / max(end - begin, 1)
    return final + (initial - final) * (1.0 - frac) ** power


def prunable_layers(model: Any) -> list[Any]:
    """Layers with a kernel worth pruning (the output layer included, biases never)."""
    return [
        layer
        for layer in _walk(model)
        if type(layer).__name__ in PRUNABLE and getattr(layer, "kernel", None) is not None
    ]


def _walk(model: Any) -> list[Any]:
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            out.extend(_walk(layer))
        else:
            out.append(layer)
    return out


def _mask(w: np.ndarray, sparsity: float) -> np.ndarray:
    k = int(round(sparsity * w.size))
    if k <= 0:
        return np.ones_like(w, dtype=bool)
    threshold = np.partition(np.abs(w).ravel(), k - 1)[k - 1]
    return np.abs(w) > threshold


def _global_masks(kernels: list[np.ndarray], sparsity: float) -> list[np.ndarray]:
    flat = np.concatenate([np.abs(k).ravel() for k in kernels])
    k = int(round(sparsity * flat.size))
    if k <= 0:
        return [np.ones_like(w, dtype=bool) for w in kernels]
    threshold = np.partition(flat, k - 1)[k - 1]
    return [np.abs(w) > threshold for w in kernels]


def make_callback(
    model: Any,
    target: float | Mapping[str, float],
    *,
    begin_step: int,
    end_step: int,
    frequency: int = 10,
    scope: str = "layer",
) -> Any:
    """A Keras callback that prunes `model` to `target` between begin and end steps.

    `target` is one sparsity for every prunable layer or ``{layer_name: sparsity}``;
    `scope` "global" ranks all kernels together (one threshold) instead of per layer.
    """
    import keras

    layers = prunable_layers(model)
    if isinstance(target, Mapping):
        unknown = set(target) - {layer.name for layer in layers}
        if unknown:
            raise UnsupportedModelError(
                f"pruning targets name layers the model has no prunable kernel for: "
                f"{sorted(unknown)}; prunable: {[layer.name for layer in layers]}."
            )
        targets = {layer.name: float(target.get(layer.name, 0.0)) for layer in layers}
    else:
        targets = {layer.name: float(target) for layer in layers}

    class Pruning(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.step = 0
            self.masks: dict[str, np.ndarray] = {}

        def _update_masks(self) -> None:
            if scope == "global" and not isinstance(target, Mapping):
                s = polynomial_sparsity(self.step, begin_step, end_step, float(target))
                ws = [np.asarray(layer.kernel.numpy()) for layer in layers]
                for layer, m in zip(layers, _global_masks(ws, s), strict=True):
                    self.masks[layer.name] = m
                return
            for layer in layers:
                s = polynomial_sparsity(self.step, begin_step, end_step, targets[layer.name])
                self.masks[layer.name] = _mask(np.asarray(layer.kernel.numpy()), s)

        def _apply(self) -> None:
            for layer in layers:
                m = self.masks.get(layer.name)
                if m is not None:
                    layer.kernel.assign(np.asarray(layer.kernel.numpy()) * m)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if self.step >= begin_step and (
                (self.step - begin_step) % frequency == 0 or self.step >= end_step
            ):
                if self.step <= end_step:
                    self._update_masks()
            self._apply()
            self.step += 1

        def on_train_end(self, logs: Any = None) -> None:
            self.step = max(self.step, end_step)
            self._update_masks()
            self._apply()

    return Pruning()


@dataclass
class PruneResult:
    model: Any
    layer_sparsity: dict[str, float]
    params_before: int
    params_after: int  # non-zero weights after pruning
    history: dict[str, list[float]]


def layer_sparsity(model: Any) -> dict[str, float]:
    return {
        layer.name: float(np.mean(np.asarray(layer.kernel.numpy()) == 0))
        for layer in prunable_layers(model)
    }


def nonzero_params(model: Any) -> int:
    return int(sum(np.count_nonzero(np.asarray(w)) for w in model.get_weights()))


def prune_magnitude(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    sparsity: float | Mapping[str, float],
    *,
    epochs: int = 4,
    batch_size: int = 32,
    lr: float = 3e-4,
    scope: str = "layer",
    validation: tuple[np.ndarray, np.ndarray] | None = None,
) -> PruneResult:
    """Fine-tune a copy of `model` on (x, y) while pruning its kernels to `sparsity`.

    The schedule ramps over the first two thirds of the steps and holds the target for
    the rest so accuracy can recover. Returns the stripped model and per-layer sparsity.
    """
    import keras

    values = list(sparsity.values()) if isinstance(sparsity, Mapping) else [sparsity]
    if not all(0.0 <= float(s) < 1.0 for s in values):
        raise UnsupportedModelError(f"pruning sparsity must be in [0, 1), got {sparsity}.")
    pruned = keras.models.clone_model(model)
    pruned.set_weights(model.get_weights())
    pruned.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=loss_for(model),
        metrics=["accuracy"],
    )
    steps = max(1, int(np.ceil(len(x) / batch_size))) * epochs
    cb = make_callback(
        pruned, sparsity, begin_step=0, end_step=max(1, (2 * steps) // 3), scope=scope
    )
    hist = pruned.fit(
        x, y, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=[cb],
        validation_data=validation,
    )  # fmt: skip
    return PruneResult(
        model=pruned,
        layer_sparsity=layer_sparsity(pruned),
        params_before=int(model.count_params()),
        params_after=nonzero_params(pruned),
        history={k: [float(v) for v in vs] for k, vs in hist.history.items()},
    )


def loss_for(model: Any) -> str:
    """Sparse cross-entropy on probabilities or logits, whichever the head gives."""
    last = model.layers[-1]
    act = getattr(getattr(last, "activation", None), "__name__", "")
    if act == "softmax":
        return "sparse_categorical_crossentropy"
    import keras

    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@dataclass(frozen=True)
class FineTuneConfig(PassConfig):
    """A Keras pruning pass's settings: the target sparsity (one, or per layer), the
    labelled samples it fine-tunes on, and the epochs (None: the pass's default)."""

    sparsity: float | Mapping[str, float]
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    validation: tuple[np.ndarray, np.ndarray] | None = None
    epochs: int | None = None


def keras_model(model: Any) -> Any:
    """`model` as an in-memory Keras model (loaded when it is a path or a Model)."""
    if hasattr(model, "get_weights"):
        return model
    from edgekit.formats.keras import load_keras
    from edgekit.model import Model, load

    return load_keras(model if isinstance(model, Model) else load(model))


def fine_tune_result(res: PruneResult, out: Path) -> PassResult:
    """A Keras pruning's PassResult: the pruned model saved at `out` (.keras)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    res.model.save(out)
    details = {
        "layer_sparsity": {k: round(v, 4) for k, v in res.layer_sparsity.items()},
        "params_before": res.params_before,
        "params_after": res.params_after,
    }
    return PassResult(out, "keras", "fp32", details, model=res.model)


class MagnitudePrune(Pass):
    """The ``prune_magnitude`` pass: `prune_magnitude` on a Keras model."""

    name = "prune_magnitude"
    Config = FineTuneConfig

    def _run(self, model: Any, config: FineTuneConfig, out: Path) -> PassResult:
        kw = {} if config.epochs is None else {"epochs": config.epochs}
        res = prune_magnitude(keras_model(model), config.x, config.y, config.sparsity,
                              validation=config.validation, **kw)  # fmt: skip
        return fine_tune_result(res, out)
