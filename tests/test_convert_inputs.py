"""`edgekit convert --input FILE.npz`: verification on the user's own samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_user_error, run_cli

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def double(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """y = x * C in float64, x of shape [2, 3]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    c = numpy_helper.from_array(np.array([1.1, 2.2, 3.3], np.float64), "C")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "C"], ["y"], name="mul64")], "g",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [2, 3])], [c],
    )  # fmt: skip
    path = tmp_path_factory.mktemp("f64") / "double.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.parametrize(
    ("arrays", "extra", "fragments"),
    [
        (None, (), ("missing.npz", "no such input file")),
        ({"z": np.zeros((2, 3))}, (), ("holds arrays ['z']", "inputs are ['x']")),
        ({"x": np.zeros((3, 3))}, (), ("input 'x' has shape [3, 3]", "expects [2, 3]")),
        ({"x": np.zeros((2, 3), np.float32)}, (), ("input 'x' has dtype float32", "float64")),
        ({"x": np.zeros((2, 3))}, ("--no-verify",), ("cannot go with --no-verify",)),
    ],
    ids=["missing-file", "wrong-name", "wrong-shape", "wrong-dtype", "no-verify"],
)
def test_bad_samples_are_one_sentence_and_leave_no_output(
    double: Path, tmp_path: Path, arrays: dict | None, extra: tuple, fragments: tuple
) -> None:
    npz = tmp_path / "missing.npz"
    if arrays is not None:
        npz = tmp_path / "samples.npz"
        np.savez(npz, **arrays)
    out = tmp_path / "m.xml"
    r = run_cli("convert", str(double), "--to", "openvino", "--out", str(out),
                "--input", str(npz), *extra)  # fmt: skip
    assert_user_error(r, *fragments)
    assert not out.exists() and not list(tmp_path.glob(".edgekit-convert-*"))


def test_a_float64_model_verifies_at_float32_on_the_users_samples(
    double: Path, tmp_path: Path
) -> None:
    """OpenVINO's CPU computes the float64 IR in float32: on the user's samples (a leading
    sample axis of 3) it is compared at float32 tolerance and said. (On generated inputs every
    path is refused at float64's bound, which takes minutes: tests/test_debug.py covers it.)"""
    pytest.importorskip("openvino")
    from edgekit.convert.reference import FP64_AS_FP32

    npz = tmp_path / "x.npz"
    np.savez(npz, x=np.linspace(-3.7, 5.3, 18).reshape(3, 2, 3))
    r = run_cli("convert", str(double), "--to", "openvino", "--out", str(tmp_path / "u.xml"),
                "--input", str(npz), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["parity"]["passed"] and res["parity"]["n_samples"] == 3, res["parity"]
    assert res["parity"]["precision"] == "fp32" and res["parity"]["max_abs_error"] > 1e-9
    assert FP64_AS_FP32 in res["warnings"]


@pytest.mark.slow
def test_a_float64_model_to_tflite_says_its_inputs_became_float32(
    double: Path, tmp_path: Path
) -> None:
    """TFLite has no float64 arithmetic: the .tflite takes float32, which the result says,
    and runs on the user's samples cast as it says (about a minute: the converters run)."""
    pytest.importorskip("tensorflow")
    from edgekit.convert import convert
    from edgekit.runtimes import open_session

    x = np.linspace(-3.7, 5.3, 6).reshape(2, 3)
    npz = tmp_path / "x.npz"
    np.savez(npz, x=x)
    res = convert(double, "tflite", tmp_path / "d.tflite", feeds=npz)
    assert res.verified
    assert any("'x': float64 in the source, float32 in the result" in w for w in res.warnings)
    with open_session(res.model) as sess:
        (y,) = sess.run({sess.signature.inputs[0].name: x.astype(np.float32)}).values()
    np.testing.assert_allclose(y, x * [1.1, 2.2, 3.3], rtol=1e-6)
