"""The runtimes behind one Session API, on real models: the three targets and the
reference-only Keras and TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest

import edgekit
from edgekit.errors import EdgekitError, InputError, UnsupportedModelError
from edgekit.inputs import concrete_shape, generate_inputs, parse_shapes
from edgekit.model import Quantization, TensorSpec
from edgekit.runtimes import open_session

CASES = [("tflite", "litert"), ("onnx", "onnxruntime"), ("openvino", "openvino"),
         ("onnx", "openvino"), ("tflite", "openvino"), ("savedmodel", "openvino"),
         ("keras", "keras"), ("h5", "keras"), ("savedmodel", "tensorflow")]  # fmt: skip


@pytest.mark.parametrize(("kind", "runtime"), CASES)
def test_every_runtime_agrees_with_keras(tiny_models, kind, runtime):
    import keras

    reference = keras.saving.load_model(tiny_models["keras"])
    model = edgekit.load(tiny_models[kind])
    feeds = generate_inputs(model.signature, batch=2, seed=3)[0]
    with open_session(model, runtime, threads=1) as session:
        outputs = session.run(feeds)
    (got,) = outputs.values()
    want = np.asarray(reference(next(iter(feeds.values()))))
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_bound_call_matches_run(tiny_models):
    model = edgekit.load(tiny_models["onnx"])
    feeds = generate_inputs(model.signature)[0]
    for runtime in ("onnxruntime", "openvino"):
        with open_session(model, runtime, threads=1) as session:
            expected = next(iter(session.run(feeds).values()))
            call = session.bind(feeds)
            call()
            np.testing.assert_allclose(next(iter(session.run(feeds).values())), expected)


def test_threads_are_honoured(tiny_models):
    with open_session(tiny_models["openvino"], "openvino", threads=1) as session:
        assert session.compiled.get_property("INFERENCE_NUM_THREADS") == 1
        assert str(session.compiled.get_property("INFERENCE_PRECISION_HINT")) in (
            "f32",
            "<Type: 'float32'>",
        )
    with open_session(tiny_models["onnx"], "onnxruntime", threads=1) as session:
        assert session.threads == 1
        assert session.sess.get_session_options().intra_op_num_threads == 1


def test_feeds_are_checked(tiny_models):
    with open_session(tiny_models["onnx"], "onnxruntime") as session:
        with pytest.raises(InputError, match="missing"):
            session.run({"wrong": np.zeros((1, 8, 8, 1), np.float32)})
        with pytest.raises(InputError, match="dtype float64"):
            session.run({"image": np.zeros((1, 8, 8, 1))})
        with pytest.raises(InputError, match=r"shape \[1, 8, 8, 2\]"):
            session.run({"image": np.zeros((1, 8, 8, 2), np.float32)})


def test_quantized_model_runs_on_litert_and_openvino(shared_models):
    model = edgekit.load(shared_models / "micro_speech_quantized.tflite")
    feeds = generate_inputs(model.signature, seed=1)[0]
    results = []
    for runtime in ("litert", "openvino"):
        with open_session(model, runtime, threads=1) as session:
            results.append(next(iter(session.run(feeds).values())).astype(np.int32))
    assert results[0].dtype == results[1].dtype
    assert np.abs(results[0] - results[1]).max() <= 2  # int8 rounding may differ by a step


def test_person_detect_refused_by_litert_names_the_tensor(shared_models):
    with pytest.raises(
        UnsupportedModelError, match=r"tensor 33 '.*Conv2D_bias'.*quantized_dimension"
    ):
        open_session(shared_models / "person_detect.tflite", "litert")


def test_unknown_runtime_and_missing_provider():
    with pytest.raises(EdgekitError, match="valid runtimes: litert, onnxruntime, openvino"):
        from edgekit.runtimes import get_runtime

        get_runtime("tensorrt")


def test_missing_provider_is_a_clear_error(tiny_models):
    with pytest.raises(UnsupportedModelError, match="CUDAExecutionProvider is not available"):
        open_session(tiny_models["onnx"], "onnxruntime", provider="cuda")


def test_generated_inputs_respect_quantized_range_and_seed():
    q = Quantization((0.1,), (-128,))
    spec = TensorSpec("x", (None, 1000), "int8", q)
    from edgekit.model import Signature

    sig = Signature((spec,), ())
    a, b = generate_inputs(sig, count=2, seed=7)
    assert a["x"].dtype == np.int8 and a["x"].shape == (1, 1000)
    assert a["x"].min() == -128 and a["x"].max() == 127  # the whole representable range
    assert not np.array_equal(a["x"], b["x"])  # distinct samples
    again = generate_inputs(sig, count=2, seed=7)
    np.testing.assert_array_equal(again[0]["x"], a["x"])


def test_absurd_shape_refused_before_allocation():
    spec = TensorSpec("x", (1, 10**9, 10**9), "float32")
    with pytest.raises(InputError, match="beyond edgekit's limit"):
        concrete_shape(spec)


def test_parse_shapes():
    assert parse_shapes(["data_0=1,3,224,224"]) == {"data_0": (1, 3, 224, 224)}
    assert parse_shapes(["a:0=2,4"]) == {"a:0": (2, 4)}
    with pytest.raises(InputError, match="NAME=D1,D2"):
        parse_shapes(["1,3,224"])


def test_missing_runtime_names_the_extra(monkeypatch):
    from edgekit.errors import MissingDependencyError
    from edgekit.runtimes import get_runtime

    for name, extra in (("litert", "litert"), ("onnxruntime", "onnx"), ("openvino", "openvino"),
                        ("keras", "train"), ("tensorflow", "train")):  # fmt: skip
        rt = get_runtime(name)
        monkeypatch.setattr(rt, "available", classmethod(lambda cls: False))
        with pytest.raises(MissingDependencyError, match=rf"pip install 'edgekit\[{extra}\]'"):
            rt.require()


def test_every_format_opens_a_session_and_references_are_not_targets(tiny_models):
    from edgekit.runtimes import (
        REFERENCE_RUNTIMES,
        default_runtime,
        get_runtime,
        reference_runtime,
        target_runtimes,
    )

    assert target_runtimes() == [
        "litert",
        "onnxruntime",
        "openvino",
        "tflite-micro",
        "torch",
        "executorch",
    ]
    assert {"keras", "tensorflow", "onnx-reference"} <= set(REFERENCE_RUNTIMES)
    assert all(get_runtime(n).reference_only for n in REFERENCE_RUNTIMES)
    assert not any(get_runtime(n).reference_only for n in target_runtimes())
    keras_model = edgekit.load(tiny_models["keras"])
    with open_session(keras_model) as session:  # no target runtime reads .keras: its reference
        assert session.runtime == "keras"
    with pytest.raises(EdgekitError, match="convert it first"):
        default_runtime(keras_model)  # what bench and deploy ask: still no target
    saved = edgekit.load(tiny_models["savedmodel"])
    assert reference_runtime(saved) == "tensorflow" and default_runtime(saved) == "openvino"
    with pytest.raises(InputError, match="keras runtime runs only keras models"):
        open_session(tiny_models["onnx"], "keras")


def test_op_times_per_runtime(tiny_models):
    onnx_model = edgekit.load(tiny_models["onnx"])
    feeds = generate_inputs(onnx_model.signature, seed=2)[0]
    for runtime in ("onnxruntime", "openvino"):
        with open_session(onnx_model, runtime, threads=1) as session:
            prof = session.op_times(feeds, runs=3)
        assert prof["unit"] == "ms per inference"
        assert prof["ops"] and all(v >= 0 for v in prof["ops"].values())
        assert any("Conv" in op or "Convolution" in op for op in prof["ops"]), prof
    tflite = edgekit.load(tiny_models["tflite"])
    with open_session(tflite, "litert") as session:
        prof = session.op_times(generate_inputs(tflite.signature)[0])
    assert prof == {"unit": "op count", "ops": dict(tflite.op_histogram)}
