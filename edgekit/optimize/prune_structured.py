"""Structured pruning: remove whole conv filters and dense units by L1 norm, then rebuild
a smaller dense Keras model and fine-tune it.

Removing a layer's outputs shrinks whatever reads them: the next conv's input channels, a
BatchNormalization's statistics, a depthwise conv's channels, or, after a Flatten, the
matching rows of the Dense kernel. The walk follows the functional graph: tensors joined
by an elementwise merge (Add, Multiply, ...; a residual connection) share one set of
channels, so their producers are pruned together by their summed L1 norms; Concatenate
lines its inputs' channels up one after the other. Channels that reach the model's output
or a layer edgekit cannot follow them through are kept whole, so the model's outputs do
not change shape and such layers see every channel they had.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import UnsupportedModelError
from edgekit.optimize.base import Pass, PassResult
from edgekit.optimize.prune_magnitude import (
    FineTuneConfig,
    PruneResult,
    fine_tune_result,
    keras_model,
    loss_for,
)

PRUNABLE = ("Conv1D", "Conv2D", "Dense")
# Layers that keep channels where they are (BatchNormalization and DepthwiseConv2D too,
# with their per-channel weights sliced).
PASS_THROUGH = (
    "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "Dropout",
    "SpatialDropout1D", "SpatialDropout2D", "Activation", "ReLU", "LeakyReLU", "ELU",
    "ZeroPadding1D", "ZeroPadding2D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "Cropping2D", "UpSampling2D",
)  # fmt: skip
MERGES = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")


@dataclass
class _Space:
    """The channels (last axis) of a tensor: made by a layer, or built from other spaces."""

    size: int
    parts: list[_Space] = field(default_factory=list)  # Concatenate: its inputs in order
    spatial: tuple[int, ...] | None = None  # Flatten: the (h, w) before channels
    producers: list[Any] = field(default_factory=list)  # prunable layers that write it
    fixed: bool = False  # must keep every channel
    parent: _Space | None = None  # union-find: merged spaces share one root

    def root(self) -> _Space:
        s = self
        while s.parent is not None:
            s = s.parent
        return s


def _join(a: _Space, b: _Space) -> _Space:
    ra, rb = a.root(), b.root()
    if ra is not rb:
        rb.parent = ra
        ra.producers += rb.producers
        ra.fixed = ra.fixed or rb.fixed
    return ra


def _fix(space: _Space) -> None:
    """Keep every channel of `space` (and of whatever it is made of)."""
    space.root().fixed = True
    for part in space.parts:
        _fix(part)


def _inputs(layer: Any) -> list[Any]:
    inbound = layer.input
    return list(inbound) if isinstance(inbound, list | tuple) else [inbound]


def _keeps_channels(kind: str, cfg: Mapping[str, Any], rank: int) -> bool:
    """Whether a layer's output channels are its input's, one for one."""
    if kind == "BatchNormalization":
        return cfg.get("axis") in (-1, rank - 1)
    if kind == "DepthwiseConv2D":
        return cfg.get("depth_multiplier", 1) == 1
    return kind in PASS_THROUGH


def _walk(model: Any) -> tuple[list[Any], dict[str, _Space]]:
    """Layers in graph order and the channel space of each one's output."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedModelError(
            f"structured pruning handles single-input, single-output models; "
            f"{model.name} has {len(model.inputs)} inputs and {len(model.outputs)} outputs."
        )
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    names = {layer.name for layer in layers}
    source = _Space(int(model.inputs[0].shape[-1] or 0), fixed=True)
    spaces: dict[str, _Space] = {}
    for layer in layers:
        kind = type(layer).__name__
        if len(getattr(layer, "_inbound_nodes", [None])) > 1:
            raise UnsupportedModelError(
                f"structured pruning cannot follow layer '{layer.name}': it is applied more "
                "than once (a shared layer); use --prune without --structured."
            )
        tensors = _inputs(layer)
        ins = [
            spaces[t._keras_history[0].name] if t._keras_history[0].name in names else source
            for t in tensors
        ]
        shape = tuple(tensors[0].shape)  # of the (first) input
        cfg = layer.get_config()
        if isinstance(layer.output, list | tuple):
            raise UnsupportedModelError(
                f"structured pruning cannot follow layer '{layer.name}': it has "
                f"{len(layer.output)} outputs; use --prune without --structured."
            )
        size = int(layer.output.shape[-1] or 0)
        if kind in PRUNABLE and cfg.get("groups", 1) == 1:
            out = _Space(size, producers=[layer])
        elif _keeps_channels(kind, cfg, len(shape)):
            out = ins[0]
        elif kind in MERGES and all(t.shape[-1] == size for t in tensors):
            out = ins[0]
            for other in ins[1:]:
                out = _join(out, other)
        elif kind == "Concatenate" and cfg.get("axis") in (-1, len(layer.output.shape) - 1):
            out = _Space(size, parts=ins)
        elif kind == "Flatten" and len(shape) > 2 and None not in shape[1:]:
            out = _Space(size, parts=ins, spatial=shape[1:-1])
        else:  # a layer whose channels edgekit cannot follow: it keeps all its inputs
            for space in ins:
                _fix(space)
            out = _Space(size, fixed=True)
        spaces[layer.name] = out
    _fix(spaces[model.outputs[0]._keras_history[0].name])
    return layers, spaces


def l1_keep(kernel: np.ndarray, sparsity: float) -> np.ndarray:
    """Indices of output channels to keep (largest L1 norm first kept), sorted."""
    n = kernel.shape[-1]
    keep = max(1, int(round(n * (1.0 - sparsity))))
    norms = np.abs(kernel).reshape(-1, n).sum(0)
    return np.sort(np.argsort(-norms, kind="stable")[:keep])


def plan(model: Any, sparsity: float | Mapping[str, float]) -> dict[str, np.ndarray]:
    """Which output channels each pruned layer keeps. Layers that write one set of channels
    (through a residual Add) keep the same ones, chosen by their summed L1 norms, at the
    smallest sparsity asked of any of them."""
    layers, spaces = _walk(model)
    out: dict[str, np.ndarray] = {}
    seen: set[int] = set()
    for layer in layers:
        root = spaces[layer.name].root()
        if layer not in root.producers or id(root) in seen or root.fixed:
            continue
        seen.add(id(root))
        asked = [
            float(sparsity.get(p.name, 0.0) if isinstance(sparsity, Mapping) else sparsity)
            for p in root.producers
        ]
        if min(asked) <= 0:
            continue
        kernels = [np.asarray(p.kernel.numpy()) for p in root.producers]
        summed = sum(np.abs(k).reshape(-1, k.shape[-1]).sum(0) for k in kernels)
        keep = l1_keep(summed[None, :], min(asked))
        for p in root.producers:
            out[p.name] = keep
    return out


def _kept(space: _Space, keep: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """Surviving channel indices of a space, None when all survive."""
    if space.spatial is not None:  # Flatten: (h, w, c) order, channels last
        inner = _kept(space.parts[0], keep)
        if inner is None:
            return None
        idx = np.arange(space.size).reshape(*space.spatial, space.parts[0].size)
        return np.take(idx, inner, axis=-1).ravel()
    if space.parts:  # Concatenate
        kept = [_kept(p, keep) for p in space.parts]
        if all(k is None for k in kept):
            return None
        offsets = np.cumsum([0] + [p.size for p in space.parts[:-1]])
        return np.concatenate([
            (np.arange(p.size) if k is None else k) + o
            for p, k, o in zip(space.parts, kept, offsets, strict=True)
        ])  # fmt: skip
    root = space.root()
    return keep.get(root.producers[0].name) if root.producers else None


def rebuild(model: Any, keep: Mapping[str, np.ndarray]) -> Any:
    """A new, smaller Keras model with only the kept channels, weights copied over."""
    import keras

    layers, spaces = _walk(model)
    inp = keras.Input(tuple(model.input_shape[1:]), name=model.inputs[0].name.split(":")[0])
    made: dict[str, Any] = {}
    for layer in layers:
        kind = type(layer).__name__
        cfg = layer.get_config()
        weights = [np.asarray(w) for w in layer.get_weights()]
        args = [made.get(t._keras_history[0].name, inp) for t in _inputs(layer)]
        src = _inputs(layer)[0]._keras_history[0].name
        kept_in = _kept(spaces[src], keep) if src in spaces else None
        if kind in PRUNABLE:
            if kept_in is not None:
                weights[0] = np.take(weights[0], kept_in, axis=-2)
            out_idx = keep.get(layer.name)
            if out_idx is not None:
                weights[0] = weights[0][..., out_idx]
                if len(weights) > 1:
                    weights[1] = weights[1][out_idx]
                cfg["filters" if "filters" in cfg else "units"] = len(out_idx)
        elif kind == "BatchNormalization" and kept_in is not None:
            weights = [w[kept_in] for w in weights]
        elif kind == "DepthwiseConv2D" and kept_in is not None:
            weights[0] = np.take(weights[0], kept_in, axis=2)
            if len(weights) > 1:
                weights[1] = weights[1][kept_in]
        new = type(layer).from_config(cfg)
        made[layer.name] = new(args if isinstance(layer.input, list | tuple) else args[0])
        if weights:
            new.set_weights(weights)
    return keras.Model(inp, made[model.outputs[0]._keras_history[0].name], name=model.name)


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
        small.compile(keras.optimizers.Adam(sched), loss=loss_for(model), metrics=["accuracy"])
        h = small.fit(
            x, y, batch_size=batch_size, epochs=epochs, verbose=0, validation_data=validation
        )
        hist = {k: [float(v) for v in vs] for k, vs in h.history.items()}
    fractions = {}
    for layer in model.layers:
        if layer.name in keep:
            fractions[layer.name] = 1.0 - len(keep[layer.name]) / layer.kernel.shape[-1]
    return PruneResult(
        model=small,
        layer_sparsity=fractions,
        params_before=int(model.count_params()),
        params_after=int(small.count_params()),
        history=hist,
    )


class StructuredPrune(Pass):
    """The ``prune_structured`` pass: `prune_structured` on a Keras model."""

    name = "prune_structured"
    Config = FineTuneConfig

    def _run(self, model: Any, config: FineTuneConfig, out: Path) -> PassResult:
        kw = {} if config.epochs is None else {"epochs": config.epochs}
        res = prune_structured(keras_model(model), config.sparsity, config.x, config.y,
                               validation=config.validation, **kw)  # fmt: skip
        return fine_tune_result(res, out)
