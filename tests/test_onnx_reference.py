"""Verifying ONNX models ONNX Runtime cannot run: the reference chain and the opset edge."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_user_error, run_cli

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def _gemm6(path: Path) -> Path:
    """Gemm at opset 6 (dropped by ONNX Runtime) followed by a Relu."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "B")
    nodes = [
        helper.make_node("Gemm", ["x", "W", "B"], ["h"], name="gemm0", broadcast=1),
        helper.make_node("Relu", ["h"], ["y"], name="relu0"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], [w, b],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 6)])
    model.ir_version = 4
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def gemm6(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _gemm6(tmp_path_factory.mktemp("old") / "gemm6.onnx")


def test_onnx_runtime_refuses_the_old_opset(gemm6: Path) -> None:
    """The premise: without the chain, this model could not be verified."""
    from edgekit.errors import UnsupportedModelError
    from edgekit.runtimes import open_session

    with pytest.raises(UnsupportedModelError, match="Gemm\\(6\\)"):
        open_session(gemm6, "onnxruntime")


def test_reference_runtime_runs_the_old_opset(gemm6: Path) -> None:
    from edgekit.runtimes import RUNTIMES, get_runtime, open_session

    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    with open_session(gemm6, "onnx-reference") as sess:
        y = sess.run({"x": x})["y"]
    import onnx
    from onnx import numpy_helper

    init = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(gemm6)).graph.initializer}
    np.testing.assert_allclose(y, np.maximum(x @ init["W"] + init["B"], 0), rtol=1e-6)
    assert "onnx-reference" not in RUNTIMES  # never listed or benchmarked
    assert get_runtime("onnx-reference").reference_only


def test_old_opset_converts_to_openvino_verified_by_the_reference(
    gemm6: Path, tmp_path: Path
) -> None:
    pytest.importorskip("openvino")
    from edgekit.convert import convert

    res = convert(gemm6, "openvino", tmp_path / "g.xml")
    assert res.verified and res.parity.passed
    assert res.reference == "onnx-reference"
    info = res.to_dict()
    assert info["reference"] == "onnx-reference" and info["verified"] is True
    assert any("confirmed by onnxruntime (opset 17 upgrade)" in w for w in res.warnings)


def test_cli_says_which_reference_verified(gemm6: Path, tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    r = run_cli("convert", str(gemm6), "--to", "openvino", "--out", str(tmp_path / "g.xml"))
    assert r.returncode == 0, r.stderr
    assert "verified: max |err|" in r.stdout and "against onnx-reference" in r.stdout


def test_opset_upgrade_is_an_edge_and_verifies(gemm6: Path, tmp_path: Path) -> None:
    import onnx

    r = run_cli("convert", str(gemm6), "--to", "onnx", "--opset", "17",
                "--out", str(tmp_path / "g17.onnx"), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["tools"] == ["onnx.version_converter"] and info["verified"] is True
    assert info["parity"]["passed"] and info["reference"] == "onnx-reference"
    out = onnx.load(info["output"])
    assert [o.version for o in out.opset_import if o.domain in ("", "ai.onnx")] == [17]


def test_graph_has_the_opset_edge_alone_and_as_a_first_hop() -> None:
    from edgekit.convert import find_paths
    from edgekit.convert.graph import path_str

    same = find_paths("onnx", "onnx")
    # onnx -> onnx: the opset upgrade, and (issue 18) the onnxslim simplification
    assert [[e.tool for e in p] for p in same] == [["onnx.version_converter"], ["onnxslim"]]
    to_ov = find_paths("onnx", "openvino")
    assert path_str(to_ov[0]) == "onnx -> openvino"  # the direct path stays first
    assert any(p[0].tool == "onnx.version_converter" and len(p) == 2 for p in to_ov)
    assert all(e.src != e.dst for p in find_paths("tflite", "openvino") for e in p)


def test_opset_range_is_the_one_onnx_defines() -> None:
    import onnx

    from edgekit.convert.onnx_opset import OPSETS

    assert OPSETS == (1, onnx.defs.onnx_opset_version())


@pytest.mark.parametrize("value", ["0", "99", "seventeen"])
def test_bad_opset_is_exit_2_without_traceback(gemm6: Path, tmp_path: Path, value: str) -> None:
    r = run_cli("convert", str(gemm6), "--to", "onnx", "--opset", value,
                "--out", str(tmp_path / "x.onnx"))  # fmt: skip
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "--opset" in r.stderr
    assert not (tmp_path / "x.onnx").exists()


def test_same_format_without_opset_says_what_to_pass(gemm6: Path, tmp_path: Path) -> None:
    r = run_cli("convert", str(gemm6), "--to", "onnx", "--out", str(tmp_path / "x.onnx"))
    assert_user_error(r, "already a onnx model", "--opset")


def test_no_reference_is_said_and_never_verified(tmp_path: Path) -> None:
    """A model no reference runs: the chain says why each failed instead of passing it."""
    import onnx
    from onnx import TensorProto, helper

    from edgekit.convert.reference import ReferenceUnavailable, reference_outputs
    from edgekit.inputs import generate_inputs
    from edgekit.model import load

    node = helper.make_node("Frobnicate", ["x"], ["y"], name="frob", domain="example.custom")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )  # fmt: skip
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("example.custom", 1)])  # fmt: skip
    path = tmp_path / "custom.onnx"
    onnx.save(proto, str(path))
    model = load(path)
    with pytest.raises(ReferenceUnavailable, match="ONNX Runtime .*reference evaluator"):
        reference_outputs(model, generate_inputs(model.signature, count=1))


def test_own_feeds_verify_what_generated_inputs_cannot(tmp_path: Path) -> None:
    """Indices computed before a Gather (idx - 5) are beyond what edgekit reads from the graph:
    generated ones fall outside the table; the user's do not."""
    pytest.importorskip("openvino")
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgekit.convert import convert
    from edgekit.errors import VerificationError

    table = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), "T")
    five = numpy_helper.from_array(np.array(5, np.int64), "five")
    nodes = [helper.make_node("Sub", ["idx", "five"], ["i"], name="shift"),
             helper.make_node("Gather", ["T", "i"], ["y"], name="lookup")]  # fmt: skip
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("idx", TensorProto.INT64, [5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 4])], [table, five],
    )  # fmt: skip
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "lookup.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(VerificationError, match="cannot be verified"):
        convert(path, "openvino", tmp_path / "a.xml")
    assert not (tmp_path / "a.xml").exists()
    feeds = [{"idx": np.array([5, 7, 6, 6, 5], np.int64)}]
    res = convert(path, "openvino", tmp_path / "b.xml", feeds=feeds)
    assert res.verified and res.reference == "onnxruntime"


def test_float64_source_on_a_float32_target_is_compared_at_float32_on_the_users_data(
    tmp_path: Path,
) -> None:
    """OpenVINO's CPU runs a float64 IR in float32 (its runtime model says so): on the user's
    samples that is compared at float32 tolerance and said. (On generated inputs it is refused
    at float64's bound: tests/test_debug.py::test_a_wrong_conversion_names_the_node_where_it_diverges.)"""
    pytest.importorskip("openvino")
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgekit.convert import convert
    from edgekit.convert.reference import FP64_AS_FP32, computes_float32
    from edgekit.model import load

    c = numpy_helper.from_array(np.array([1.1, 2.2, 3.3], np.float64), "C")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "C"], ["y"], name="mul64")], "g",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [2, 3])], [c],
    )  # fmt: skip
    path = tmp_path / "double.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    feeds = [{"x": np.linspace(-3.7, 5.3, 6).reshape(2, 3)}]
    res = convert(path, "openvino", tmp_path / "b.xml", feeds=feeds)
    assert res.verified and FP64_AS_FP32 in res.warnings
    assert res.parity.precision == "fp32" and res.parity.max_abs_error > 1e-9  # really f32
    assert computes_float32(res.model) and not computes_float32(load(path))
