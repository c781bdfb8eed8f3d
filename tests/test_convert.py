"""The conversion graph: every edge with parity, fallback, clear errors, and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_user_error, run_cli

from edgekit.convert import convert, find_paths
from edgekit.convert.graph import EDGES, path_str
from edgekit.errors import InputError, UnsupportedModelError, VerificationError
from edgekit.model import load


def _tiny_keras(path: Path, seed: int, dynamic_len: bool = False) -> Path:
    import keras

    keras.utils.set_random_seed(seed)
    if dynamic_len:
        inp = keras.Input((None, 4), name="seq")
        x = keras.layers.Dense(3)(inp)
        out = keras.layers.GlobalAveragePooling1D(name="pooled")(x)
    else:
        inp = keras.Input((8, 8, 3), name="image")
        x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
        x = keras.layers.GlobalAveragePooling2D()(x)
        out = keras.layers.Dense(5, activation="softmax", name="probs")(x)
    keras.Model(inp, out).save(path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny Keras conv model, and the same model as SavedModel, TFLite and ONNX."""
    root = tmp_path_factory.mktemp("convert")
    k = _tiny_keras(root / "tiny.keras", seed=0)
    return {
        "keras": k,
        "savedmodel": convert(k, "savedmodel", root / "tiny_sm").model.path,
        "tflite": convert(k, "tflite", root / "tiny.tflite").model.path,
        "onnx": convert(k, "onnx", root / "tiny.onnx").model.path,
    }


def test_graph_lists_direct_paths_first() -> None:
    assert path_str(find_paths("tflite", "openvino")[0]) == "tflite -> openvino"
    assert path_str(find_paths("tflite", "openvino")[1]) == "tflite -> onnx -> openvino"
    assert path_str(find_paths("keras", "openvino")[0]) == "keras -> savedmodel -> openvino"
    assert find_paths("openvino", "onnx") == []
    for edge in EDGES:  # every edge names a module that exists
        assert edge.runner() is not None


@pytest.mark.parametrize(
    ("src", "to", "expected"),
    [
        ("keras", "savedmodel", ["keras", "savedmodel"]),
        ("keras", "tflite", ["keras", "tflite"]),
        ("keras", "onnx", ["keras", "onnx"]),
        ("keras", "openvino", ["keras", "savedmodel", "openvino"]),
        ("savedmodel", "tflite", ["savedmodel", "tflite"]),
        ("savedmodel", "onnx", ["savedmodel", "onnx"]),
        ("savedmodel", "openvino", ["savedmodel", "openvino"]),
        ("onnx", "openvino", ["onnx", "openvino"]),
        ("tflite", "onnx", ["tflite", "onnx"]),
        ("tflite", "openvino", ["tflite", "openvino"]),
    ],
)
def test_each_edge_converts_with_parity(
    models: dict[str, Path], tmp_path: Path, src: str, to: str, expected: list[str]
) -> None:
    res = convert(models[src], to, tmp_path / "out")
    assert res.path == expected
    assert str(res.model.format) == to
    assert res.parity is not None and res.parity.passed
    assert res.parity.max_abs_error < 1e-4
    assert res.parity.cosine > 0.9999
    assert res.parity.top1_agreement == 1.0
    assert res.parity.n_samples == 4
    # Nothing but the result is left beside it (no temporary folders).
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_dynamic_batch_stays_dynamic_unless_shapes_given(
    models: dict[str, Path], tmp_path: Path
) -> None:
    dyn = convert(models["keras"], "onnx", tmp_path / "dyn.onnx").model
    assert dyn.signature.inputs[0].shape[0] is None or isinstance(
        dyn.signature.inputs[0].shape[0], str
    )
    fixed = convert(models["keras"], "onnx", tmp_path / "fixed.onnx",
                    input_shapes={"image": (1, 8, 8, 3)}).model  # fmt: skip
    assert fixed.signature.inputs[0].shape == (1, 8, 8, 3)


def test_fallback_when_the_direct_path_fails(
    models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgekit.convert import openvino_frontend

    real = openvino_frontend.run

    def refuse_tflite(src, out, opts):  # noqa: ANN001, ANN202
        if str(src.format) == "tflite":
            raise UnsupportedModelError(f"{src.path}: frontend says no (op FAKE_OP)")
        return real(src, out, opts)

    monkeypatch.setattr(openvino_frontend, "run", refuse_tflite)
    res = convert(models["tflite"], "openvino", tmp_path / "m")
    assert res.path == ["tflite", "onnx", "openvino"]
    assert res.parity.passed
    failed = [a for a in res.attempts if not a.ok]
    assert failed[0].formats == ["tflite", "openvino"] and "FAKE_OP" in failed[0].error


def test_a_wrong_result_is_rejected_and_the_next_path_tried(
    models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A converter that silently produces a different model must not pass verification."""
    from edgekit.convert import tf_onnx, tflite_onnx

    other = load(_tiny_keras(tmp_path / "other.keras", seed=1))
    real = tf_onnx.run
    monkeypatch.setattr(tf_onnx, "run", lambda src, out, opts: real(other, out, opts))
    res = convert(models["keras"], "onnx", tmp_path / "ok.onnx")
    assert res.path == ["keras", "tflite", "onnx"]  # the only path without the broken edge
    assert res.parity.passed
    failed = [a for a in res.attempts if not a.ok]
    assert [a.formats for a in failed] == [["keras", "onnx"], ["keras", "savedmodel", "onnx"]]
    assert all(a.stage == "verify" and "converted, but" in a.error for a in failed)

    monkeypatch.setattr(tflite_onnx, "run", lambda src, out, opts: real(other, out, opts))
    with pytest.raises(VerificationError) as err:
        convert(models["keras"], "onnx", tmp_path / "wrong.onnx")
    assert "keras -> onnx: converted, but" in str(err.value)
    assert not (tmp_path / "wrong.onnx").exists()


def test_fp16_results_are_smaller_and_within_fp16_tolerance(
    models: dict[str, Path], tmp_path: Path
) -> None:
    import onnx

    t = convert(models["keras"], "tflite", tmp_path / "h.tflite", precision="fp16")
    assert t.parity.passed and t.parity.tolerance.atol == 1e-2
    o = convert(models["keras"], "onnx", tmp_path / "h.onnx", precision="fp16")
    assert o.parity.passed
    types = {i.data_type for i in onnx.load(str(o.model.path)).graph.initializer}
    assert onnx.TensorProto.FLOAT16 in types
    assert o.model.signature.inputs[0].dtype == "float32"  # I/O kept float32
    v = convert(models["onnx"], "openvino", tmp_path / "h", precision="fp16")
    assert v.parity.passed
    assert v.model.path.with_suffix(".bin").stat().st_size < (
        convert(models["onnx"], "openvino", tmp_path / "f").model.path.with_suffix(".bin")
        .stat().st_size
    )  # fmt: skip


def test_bad_requests_are_one_sentence(models: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="already a tflite model"):
        convert(models["tflite"], "tflite", tmp_path / "x.tflite")
    with pytest.raises(InputError, match="unknown target format"):
        convert(models["tflite"], "coreml", tmp_path / "x")
    with pytest.raises(InputError, match="int8 is the optimize pass"):
        convert(models["keras"], "tflite", tmp_path / "q.tflite", precision="int8")


def test_unsupported_ops_are_named() -> None:
    from edgekit.convert.tf_onnx import unsupported_ops

    logs = ["Unsupported ops: Counter({'RaggedTensorToTensor': 1, 'StringSplit': 2})"]
    assert unsupported_ops(logs) == ["RaggedTensorToTensor", "StringSplit"]


def test_quantized_tflite_converts_with_int8_parity(shared_models: Path, tmp_path: Path) -> None:
    res = convert(shared_models / "micro_speech_quantized.tflite", "onnx", tmp_path / "ms.onnx")
    assert res.parity.passed and res.parity.precision == "int8"
    assert res.model.signature.inputs[0].dtype == "int8"


def test_person_detect_converts_despite_its_bias_axes(shared_models: Path, tmp_path: Path) -> None:
    """LiteRT and OpenVINO refuse the file as it is (bias tensors name axis 3); edgekit repairs
    that axis in a temporary copy, so both paths convert and the result is verified."""
    src = shared_models / "person_detect.tflite"
    with pytest.raises(UnsupportedModelError, match="quantized_dimension"):
        from edgekit.runtimes import open_session

        open_session(src)
    for to, path in (("openvino", ["tflite", "openvino"]), ("onnx", ["tflite", "onnx"])):
        res = convert(src, to, tmp_path / f"pd_{to}")
        assert res.path == path and res.parity.passed
        assert res.parity.top1_agreement == 1.0


def test_lstm_that_no_converter_takes_names_each_path(shared_models: Path, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError) as err:
        convert(shared_models / "trained_lstm.tflite", "openvino", tmp_path / "l")
    msg = str(err.value)
    assert "tflite -> openvino: OpenVINO's tflite frontend" in msg
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in msg
    assert "tflite -> onnx -> openvino: tf2onnx" in msg
    assert ".edgekit-convert-" not in msg  # no temporary paths in what the user reads
    assert not list(tmp_path.iterdir())


def test_cli_convert_prints_path_and_parity(models: dict[str, Path], tmp_path: Path) -> None:
    r = run_cli("convert", str(models["tflite"]), "--to", "openvino", "--out", str(tmp_path / "m"))
    assert r.returncode == 0, r.stderr
    assert "via tflite -> openvino" in r.stdout and "verified: max |err|" in r.stdout
    assert (tmp_path / "m.xml").is_file() and (tmp_path / "m.bin").is_file()


def test_cli_convert_errors_are_one_sentence(models: dict[str, Path], tmp_path: Path) -> None:
    r = run_cli("convert", str(models["tflite"]), "--to", "onnx", "--out", str(tmp_path / "m"),
                "--input-shape", "image")  # fmt: skip
    assert_user_error(r, "--input-shape 'image' is not NAME=D1,D2")
    r = run_cli("convert", str(tmp_path / "missing.onnx"), "--to", "tflite", "--out", "x")
    assert_user_error(r, "no such file")


def test_cli_convert_failure_names_the_converter(shared_models: Path, tmp_path: Path) -> None:
    r = run_cli("convert", str(shared_models / "trained_lstm.tflite"), "--to", "onnx",
                "--out", str(tmp_path / "l.onnx"))  # fmt: skip
    assert_user_error(r, "tf2onnx cannot convert", "lstm")


def test_results_run_on_their_runtime(models: dict[str, Path], tmp_path: Path) -> None:
    from edgekit.runtimes import open_session

    res = convert(models["keras"], "tflite", tmp_path / "r.tflite")
    x = np.zeros((1, 8, 8, 3), np.float32)
    with open_session(res.model) as s:
        (out,) = s.run({s.signature.inputs[0].name: x}).values()
    assert out.shape == (1, 5) and abs(float(out.sum()) - 1.0) < 1e-5


def test_recurrent_keras_to_tflite_fixes_the_batch(tmp_path: Path) -> None:
    """Keras LSTMs leave TensorList ops that TFLite lowers only for a known batch size."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((5, 3), name="steps")
    keras.Model(inp, keras.layers.LSTM(4)(inp)).save(tmp_path / "lstm.keras")
    res = convert(tmp_path / "lstm.keras", "tflite", tmp_path / "lstm.tflite")
    assert res.parity.passed
    assert res.model.signature.inputs[0].shape == (1, 5, 3)
    assert any("dynamic shape fixed to [1, 5, 3]" in w for w in res.warnings)
