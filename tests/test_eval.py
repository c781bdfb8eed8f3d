"""edgekit.evaluate on Keras, TFLite (float and int8), ONNX and OpenVINO exports of one model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit.errors import InputError
from edgekit.evaluate import dequantize, evaluate, quantize
from edgekit.model import Quantization, TensorSpec
from edgekit.train import train
from tests.conftest import run_cli


def _export(keras_path: Path, ds) -> dict[str, Path]:
    """The same model as TFLite (fp32 and full int8), ONNX and OpenVINO files."""
    import keras
    import tensorflow as tf

    out = keras_path.parent
    model = keras.saving.load_model(keras_path, compile=False)
    paths = {"keras": keras_path}
    tflite = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    paths["tflite"] = out / "model.tflite"
    paths["tflite"].write_bytes(tflite)

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x[None]] for x in ds.x_train[:100])
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    paths["int8"] = out / "model_int8.tflite"
    paths["int8"].write_bytes(conv.convert())

    try:
        import tf2onnx

        spec = (tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32, name="input"),)
        tf2onnx.convert.from_keras(model, input_signature=spec, output_path=str(out / "m.onnx"))
        paths["onnx"] = out / "m.onnx"
    except ImportError:
        pass
    try:
        import openvino as ov

        ov.save_model(ov.convert_model(model), str(out / "model.xml"))
        paths["openvino"] = out / "model.xml"
    except ImportError:
        pass
    return paths


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from edgekit.data import Preprocess, load_dataset

    run = train(
        "cnn",
        "digits",
        tmp_path_factory.mktemp("eval") / "cnn",
        epochs=2,
        max_train=400,
        augment=False,
        progress=False,
    )
    ds = load_dataset("digits", preprocess=Preprocess.load(run.out_dir / "preprocess.json"))
    return run, _export(run.model_path, ds)


def test_keras_accuracy_matches_training(models):
    run, paths = models
    r = evaluate(paths["keras"], "digits")
    assert r.runtime == "keras" and r.format == "keras"
    assert r.accuracy == pytest.approx(run.test_accuracy)
    assert r.preprocess.endswith("preprocess.json")
    assert np.array(r.confusion_matrix).sum() == r.samples == run.metrics["test"]["samples"]


@pytest.mark.parametrize(
    "fmt,runtime", [("tflite", "litert"), ("onnx", "onnxruntime"), ("openvino", "openvino")]
)
def test_float_exports_match_keras_within_one_sample(models, fmt, runtime):
    run, paths = models
    if fmt not in paths:
        pytest.skip(f"{fmt} exporter is not installed")
    r = evaluate(paths[fmt], "digits", reference=paths["keras"])
    assert r.runtime == runtime and r.format == fmt
    assert abs(r.errors - run.metrics["test"]["errors"]) <= 1
    assert r.reference["accuracy"] == pytest.approx(run.test_accuracy)
    assert r.reference["disagreements"] <= 1
    assert r.reference["max_abs_diff"] < 1e-2


def test_int8_model_is_quantized_and_dequantized(models):
    from edgekit.model import load

    run, paths = models
    spec = load(paths["int8"]).signature.inputs[0]
    assert spec.dtype == "int8" and spec.quantization is not None
    r = evaluate(paths["int8"], "digits", reference=paths["keras"])
    # Correct (de)quantization keeps int8 close to float; a wrong scale or zero point
    # collapses accuracy towards chance.
    assert r.accuracy >= run.test_accuracy - 0.05
    assert r.reference["agreement"] >= 0.9
    assert r.reference["max_abs_diff"] < 0.2
    assert np.all(r.outputs >= -1e-6) and np.allclose(r.outputs.sum(1), 1, atol=0.1)


@pytest.mark.parametrize("recipe", ["lstm", "transformer"])
def test_sequence_recipes_convert_and_agree(recipe, tmp_path):
    """The lstm and transformer recipes convert to TFLite and ONNX and score the same."""
    import keras
    import tensorflow as tf

    run = train(recipe, "digits", tmp_path / recipe, epochs=1, max_train=100, progress=False)
    model = keras.saving.load_model(run.model_path, compile=False)
    tflite = tmp_path / recipe / "model.tflite"
    tflite.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    checks = [tflite]
    try:
        import tf2onnx

        spec = (tf.TensorSpec((None, 28, 28), tf.float32, name="input"),)
        onnx_path = tmp_path / recipe / "model.onnx"
        tf2onnx.convert.from_keras(model, input_signature=spec, output_path=str(onnx_path))
        checks.append(onnx_path)
    except ImportError:
        pass
    for path in checks:
        r = evaluate(path, "digits", reference=run.model_path)
        assert r.reference["disagreements"] <= 1, path.name
        assert r.reference["max_abs_diff"] < 1e-3, path.name


def test_preprocess_from_elsewhere_or_guessed(models, tmp_path):
    run, paths = models
    lone = tmp_path / "model.tflite"
    shutil.copy(paths["tflite"], lone)
    given_pre = evaluate(lone, "digits", preprocess=run.out_dir / "preprocess.json")
    assert given_pre.accuracy == pytest.approx(run.test_accuracy, abs=1 / given_pre.samples)
    guessed = evaluate(lone, "digits")
    assert guessed.preprocess == "guessed"
    assert guessed.samples == given_pre.samples


def test_nchw_model_is_fed_transposed(models, tmp_path):
    """A model whose input is NCHW gets the NHWC feeds transposed, not reshaped."""
    import keras

    run, paths = models
    inner = keras.saving.load_model(paths["keras"], compile=False)
    inp = keras.Input((1, 28, 28))
    nchw = keras.Model(inp, inner(keras.layers.Permute((2, 3, 1))(inp)))
    nchw.save(tmp_path / "nchw.keras")
    shutil.copy(run.out_dir / "preprocess.json", tmp_path / "preprocess.json")
    r = evaluate(tmp_path / "nchw.keras", "digits", reference=paths["keras"])
    assert r.reference["agreement"] == 1.0


def test_dataset_object_and_class_mismatch(models, tmp_path):
    from edgekit.data import Preprocess, load_dataset

    run, paths = models
    pre = Preprocess.load(run.out_dir / "preprocess.json")
    ds = load_dataset("digits", preprocess=pre)
    r = evaluate(paths["tflite"], ds, split="val")
    assert r.samples == len(ds.y_val)
    # 12 classes in the data, 10 scores from the model: a clear error, not a crash.
    x = np.zeros((24, 8, 8), np.uint8)
    np.savez(tmp_path / "twelve.npz", x=x, y=np.arange(24) % 12)
    with pytest.raises(InputError, match="scores 10 classes"):
        evaluate(paths["tflite"], f"npz:{tmp_path / 'twelve.npz'}")


def test_cli_eval_json_and_errors(models, tmp_path):
    run, paths = models
    proc = run_cli("eval", str(paths["tflite"]), "--dataset", "digits", "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    assert data["runtime"] == "litert" and data["samples"] == run.metrics["test"]["samples"]
    assert abs(data["errors"] - run.metrics["test"]["errors"]) <= 1
    bad = run_cli(
        "eval", str(paths["tflite"]), "--dataset", f"npz:{tmp_path / 'missing.npz'}", timeout=120
    )
    assert bad.returncode == 2
    assert "does not exist" in bad.stderr and "Traceback" not in bad.stderr


def test_unknown_runtime_lists_keras_too(models):
    _, paths = models
    with pytest.raises(
        InputError,
        match=r"valid runtimes: (\S+, )*keras, litert, onnx-reference, onnxruntime, openvino, ",
    ):
        evaluate(paths["onnx"] if "onnx" in paths else paths["tflite"], "digits", runtime="trt")
    with pytest.raises(InputError, match="keras runtime runs only"):
        evaluate(paths["tflite"], "digits", runtime="keras")


def _spec(dtype: str, scale: float, zp: int) -> TensorSpec:
    return TensorSpec("t", (None, 4), dtype, Quantization((scale,), (zp,)))


def test_quantize_formula_and_clipping():
    spec = _spec("int8", 0.5, -3)
    q = quantize(np.array([0.0, 1.0, 1.2, 1000.0, -1000.0]), spec)
    np.testing.assert_array_equal(q, [-3, -1, -1, 127, -128])
    assert q.dtype == np.int8
    np.testing.assert_allclose(dequantize(q, spec), [0.0, 1.0, 1.0, 65.0, -62.5])
    u = quantize(np.array([-1.0, 0.1]), _spec("uint8", 0.1, 10))
    np.testing.assert_array_equal(u, [0, 11])
    assert dequantize(np.array([1.5], np.float32), spec).dtype == np.float32


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-10, 10), min_size=1, max_size=20),
    st.floats(0.01, 1.0),
    st.integers(-128, 127),
)
def test_quantize_round_trip_within_half_a_step(values, scale, zp):
    spec = _spec("int8", scale, zp)
    x = np.array(values)
    lo, hi = (-128 - zp) * scale, (127 - zp) * scale
    inside = (x >= lo) & (x <= hi)
    back = dequantize(quantize(x, spec), spec)
    assert np.all(np.abs(back[inside] - x[inside]) <= scale / 2 + 1e-5)
