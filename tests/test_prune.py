"""Pruning: the schedule, magnitude pruning during fine-tuning, structured pruning that
follows shapes through the graph, and weight pruning of ONNX / TFLite files."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgekit.errors import UnsupportedModelError
from edgekit.optimize.prune_magnitude import polynomial_sparsity, prune_magnitude
from edgekit.optimize.prune_structured import prune_structured


def _cnn(input_shape=(12, 12, 1), classes=3):
    import keras

    from edgekit.train.recipes import Regularization, build_cnn

    keras.utils.set_random_seed(0)
    return build_cnn(input_shape, classes, Regularization())


def test_polynomial_schedule() -> None:
    assert polynomial_sparsity(0, 0, 100, 0.8) == 0.0
    assert polynomial_sparsity(100, 0, 100, 0.8) == pytest.approx(0.8)
    assert polynomial_sparsity(500, 0, 100, 0.8) == pytest.approx(0.8)
    mid = polynomial_sparsity(50, 0, 100, 0.8)
    assert 0.6 < mid < 0.8  # cubic: most of the pruning happens early
    steps = [polynomial_sparsity(s, 0, 100, 0.8) for s in range(0, 101, 10)]
    assert steps == sorted(steps)


def _data(shape, n=96, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, *shape)).astype(np.float32), rng.integers(0, classes, n)


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_magnitude_pruning_reaches_target_and_stays_plain(scope: str) -> None:
    model = _cnn()
    x, y = _data((12, 12, 1))
    res = prune_magnitude(model, x, y, 0.6, epochs=2, batch_size=16, scope=scope)
    kernels = [layer.kernel.numpy() for layer in res.model.layers if hasattr(layer, "kernel")]
    total = sum(k.size for k in kernels)
    zeros = sum(int((k == 0).sum()) for k in kernels)
    assert zeros / total == pytest.approx(0.6, abs=0.02)
    if scope == "layer":
        assert all(s == pytest.approx(0.6, abs=0.02) for s in res.layer_sparsity.values())
    assert res.params_after < 0.5 * res.params_before
    # stripped: plain Keras layers only, and it still predicts
    assert {type(layer).__name__ for layer in res.model.layers} <= {
        "InputLayer", "Conv2D", "MaxPooling2D", "Flatten", "Dense"
    }  # fmt: skip
    assert res.model.predict(x[:2], verbose=0).shape == (2, 3)
    assert model.layers[1].kernel.numpy().all()  # the input model is untouched


def test_magnitude_pruning_per_layer_targets() -> None:
    model = _cnn()
    x, y = _data((12, 12, 1))
    res = prune_magnitude(model, x, y, {"conv2": 0.8, "dense": 0.5}, epochs=1, batch_size=16)
    assert res.layer_sparsity["conv2"] == pytest.approx(0.8, abs=0.02)
    assert res.layer_sparsity["dense"] == pytest.approx(0.5, abs=0.02)
    assert res.layer_sparsity["conv1"] == 0.0
    with pytest.raises(UnsupportedModelError, match="nope"):
        prune_magnitude(model, x, y, {"nope": 0.5}, epochs=1)


def test_structured_pruning_shrinks_params_by_the_expected_amount() -> None:
    model = _cnn((16, 16, 1), 4)
    res = prune_structured(model, 0.5)  # no data: no fine-tuning
    # conv1 32->16, conv2 64->32 (16 in), Flatten 2*2*32, dense 128->64, head keeps 4 outputs
    expected = (9 * 1 * 16 + 16) + (9 * 16 * 32 + 32) + (2 * 2 * 32 * 64 + 64) + (64 * 4 + 4)
    assert res.params_after == expected
    assert res.params_before == model.count_params()
    assert res.layer_sparsity == {"conv1": 0.5, "conv2": 0.5, "dense": 0.5}
    assert res.model.output_shape == model.output_shape


def test_structured_pruning_follows_shapes_exactly() -> None:
    """Zero the weakest half of every layer by hand: removing exactly those must leave the
    outputs unchanged, which only holds if every slice (conv in-channels, the Dense rows
    after Flatten) lines up."""
    model = _cnn((16, 16, 1), 4)
    rng = np.random.default_rng(1)
    for name in ("conv1", "conv2", "dense"):
        layer = model.get_layer(name)
        k, b = (w.copy() for w in layer.get_weights())
        dead = rng.permutation(k.shape[-1])[: k.shape[-1] // 2]
        k[..., dead] = 0
        b[dead] = 0
        layer.set_weights([k, b])
    x, _ = _data((16, 16, 1), n=8)
    res = prune_structured(model, 0.5)
    np.testing.assert_allclose(
        res.model.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


def test_structured_pruning_fine_tunes_and_runs_after_conversion(tmp_path: Path) -> None:
    model = _cnn()
    x, y = _data((12, 12, 1))
    res = prune_structured(model, 0.5, x, y, epochs=1, batch_size=16)
    assert res.history["loss"]
    from edgekit.evaluate import predict
    from edgekit.optimize.quantize import quantize

    path = quantize(res.model, "tflite", "fp32", tmp_path / "p.tflite")
    assert predict(path, x[:4]).shape == (4, 3)


def _branchy(seed: int = 0) -> Any:
    """Residual Add, BatchNormalization, Concatenate, DepthwiseConv2D and a pooled head."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inp)
    b = keras.layers.Conv2D(8, 3, padding="same", name="c2")(a)
    r = keras.layers.BatchNormalization(name="bn")(keras.layers.Add(name="add")([a, b]))
    c = keras.layers.Conv2D(6, 1, activation="relu", name="c3")(r)
    c = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(c)
    m = keras.layers.Concatenate(name="cat")([c, a])
    out = keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling2D()(m))
    return keras.Model(inp, out)


def test_structured_pruning_follows_residual_and_concat_branches_exactly() -> None:
    """Zero half the channels of each group by hand (the same half for c1 and c2, which a
    residual Add joins): removing exactly those must leave the outputs unchanged."""
    model = _branchy()
    rng = np.random.default_rng(2)
    dead8, dead6 = rng.permutation(8)[:4], rng.permutation(6)[:3]
    for name, dead in (("c1", dead8), ("c2", dead8), ("c3", dead6)):
        layer = model.get_layer(name)
        k, b = (w.copy() for w in layer.get_weights())
        k[..., dead] = 0
        b[dead] = 0
        layer.set_weights([k, b])
    bn = model.get_layer("bn")
    gamma, beta, mean, var = (w.copy() for w in bn.get_weights())
    gamma[:] = rng.uniform(0.5, 2, 8)
    beta[:] = rng.normal(size=8)
    mean[:] = rng.normal(size=8)
    beta[dead8] = mean[dead8] = 0  # a dead channel stays zero through the BN
    bn.set_weights([gamma, beta, mean, var])
    dw = model.get_layer("dw")
    k, b = (w.copy() for w in dw.get_weights())
    b[:] = rng.normal(size=6)
    b[dead6] = 0
    dw.set_weights([k, b])

    res = prune_structured(model, 0.5)
    assert res.layer_sparsity == {"c1": 0.5, "c2": 0.5, "c3": 0.5}
    assert res.model.get_layer("cat").output.shape[-1] == 3 + 4
    assert res.params_after < res.params_before
    x, _ = _data((8, 8, 3), n=8)
    np.testing.assert_allclose(
        res.model.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5
    )


def test_structured_pruning_keeps_channels_it_cannot_follow() -> None:
    """A Reshape reads c1: c1 keeps every filter, and the rest is still pruned."""
    import keras

    inp = keras.Input((4, 4, 2))
    a = keras.layers.Conv2D(8, 1, name="c1")(inp)
    b = keras.layers.Conv2D(8, 1, name="c2")(keras.layers.Reshape((4, 4, 8))(a))
    out = keras.layers.Dense(2, name="head")(keras.layers.Flatten()(b))
    res = prune_structured(keras.Model(inp, out), 0.5)
    assert res.layer_sparsity == {"c2": 0.5}
    assert res.model.output_shape == (None, 2)
    # A merge that broadcasts one channel over eight joins nothing: both keep theirs.
    gate = keras.layers.Conv2D(1, 1, name="gate")(inp)
    m = keras.layers.Multiply()([keras.layers.Conv2D(8, 1, name="c3")(inp), gate])
    out = keras.layers.Dense(2, name="head")(keras.layers.Flatten()(m))
    assert prune_structured(keras.Model(inp, out), 0.5).layer_sparsity == {}


def test_structured_pruning_refuses_shared_layers() -> None:
    import keras

    inp = keras.Input((6,))
    shared = keras.layers.Dense(6, name="shared")
    out = keras.layers.Dense(2)(shared(shared(inp)))
    with pytest.raises(UnsupportedModelError, match="applied more than once"):
        prune_structured(keras.Model(inp, out), 0.5)


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_weight_pruning_only_helps_compressed_size(tmp_path: Path, fmt: str) -> None:
    from edgekit.convert import convert
    from edgekit.evaluate import predict
    from edgekit.optimize import get_pass
    from edgekit.optimize.prune_weights import WeightPruneConfig

    model = _cnn()
    model.save(tmp_path / "m.keras")
    src = convert(tmp_path / "m.keras", fmt, tmp_path / f"m.{fmt}").model.path
    out = tmp_path / f"p.{fmt}"
    res = get_pass("prune_weights").run(src, WeightPruneConfig(0.7), out)
    sparsity = res.details["layer_sparsity"]
    assert res.path == out and res.format == fmt
    assert sparsity and all(s >= 0.69 for s in sparsity.values())
    assert "compressed" in res.details["note"] and res.warnings == [res.details["note"]]
    size, src_size = out.stat().st_size, src.stat().st_size
    assert abs(size - src_size) < 0.05 * src_size
    gzipped = [len(gzip.compress(p.read_bytes(), 9)) for p in (out, src)]
    assert gzipped[0] < 0.6 * gzipped[1]
    x, _ = _data((12, 12, 1), n=4)
    assert predict(out, x).shape == (4, 3)
