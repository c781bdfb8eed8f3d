"""The node that breaks a conversion: first diverging node, and `debug reduce`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_user_error, run_cli

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def _save(nodes: list, inits: list, in_shape: list, path: Path, extra_opsets=()) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 17), *(helper.make_opsetid(d, 1) for d in extra_opsets)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _mlp(path: Path) -> Path:
    """MatMul -> Add -> Clip(0, 6) -> MatMul -> Sigmoid, weights large enough to reach the clip."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(1)
    w1 = numpy_helper.from_array(4 * rng.standard_normal((8, 8)).astype(np.float32), "W1")
    b1 = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "B1")
    lo = numpy_helper.from_array(np.array(0, np.float32), "lo")
    hi = numpy_helper.from_array(np.array(6, np.float32), "hi")
    w2 = numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), "W2")
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h"], name="mm1"),
        helper.make_node("Add", ["h", "B1"], ["hb"], name="bias1"),
        helper.make_node("Clip", ["hb", "lo", "hi"], ["c"], name="clip6"),
        helper.make_node("MatMul", ["c", "W2"], ["z"], name="mm2"),
        helper.make_node("Sigmoid", ["z"], ["y"], name="sig"),
    ]
    return _save(nodes, [w1, b1, lo, hi, w2], [2, 8], path)


def test_an_edited_attribute_in_the_ir_is_named(tmp_path: Path) -> None:
    """The converted IR with one node's attribute changed (Clamp max 6 -> 1): that node is named."""
    pytest.importorskip("openvino")
    from edgekit.convert import convert
    from edgekit.debug import first_divergence
    from edgekit.verify import compare_outputs

    src = _mlp(tmp_path / "mlp.onnx")
    res = convert(src, "openvino", tmp_path / "mlp.xml")
    assert first_divergence(src, res.model) is None  # the honest conversion: nothing diverges
    xml = res.model.path.read_text()
    assert xml.count('max="6"') == 1
    broken = tmp_path / "broken.xml"
    broken.write_text(xml.replace('max="6"', 'max="1"'))
    (tmp_path / "broken.bin").write_bytes(res.model.path.with_suffix(".bin").read_bytes())
    assert not compare_outputs(src, broken).passed
    found = first_divergence(src, broken)
    assert found is not None
    assert (found.node, found.op, found.output) == ("clip6", "Clip", "c")
    assert "'clip6' (Clip)" in found.sentence()
    r = run_cli("debug", "diverge", str(src), str(broken), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["node"] == "clip6"


def _qdq(path: Path, scales: dict[str, float]) -> Path:
    """Two Relu layers, each output quantized to int8 with the given scale before the next MatMul."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(2)
    inits = [numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), f"W{i}")
             for i in range(3)]  # fmt: skip
    nodes = []
    x = "x"
    for i in range(3):
        nodes.append(helper.make_node("MatMul", [x, f"W{i}"], [f"h{i}"], name=f"mm{i}"))
        if i == 2:
            nodes.append(helper.make_node("Identity", [f"h{i}"], ["y"], name="out"))
            break
        nodes.append(helper.make_node("Relu", [f"h{i}"], [f"a{i}"], name=f"relu{i}"))
        x = f"a{i}"
        if f"a{i}" in scales:
            inits += [numpy_helper.from_array(np.array(scales[x], np.float32), f"s{i}"),
                      numpy_helper.from_array(np.array(0, np.uint8), f"z{i}")]  # fmt: skip
            nodes += [
                helper.make_node("QuantizeLinear", [x, f"s{i}", f"z{i}"], [f"{x}_q"], name=f"q{i}"),
                helper.make_node(
                    "DequantizeLinear", [f"{x}_q", f"s{i}", f"z{i}"], [f"{x}_dq"], name=f"dq{i}"
                ),  # fmt: skip
            ]
            x = f"{x}_dq"
    return _save(nodes, inits, [4, 8], path)


def test_a_mis_scaled_quantized_layer_is_named(tmp_path: Path) -> None:
    from edgekit.debug import first_divergence

    src = _qdq(tmp_path / "float.onnx", {})
    good = _qdq(tmp_path / "good.onnx", {"a0": 0.05, "a1": 0.05})
    bad = _qdq(tmp_path / "bad.onnx", {"a0": 0.05, "a1": 0.0005})  # a1 saturates at 0.13
    assert first_divergence(src, good, precision="int8") is None
    found = first_divergence(src, bad, precision="int8")
    assert found is not None and (found.node, found.op) == ("relu1", "Relu")


@pytest.fixture
def no_onnx2tf(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """No onnx2tf tool environment (a folder nothing can create): since issue 18, onnx2tf's
    SavedModel reaches OpenVINO with Inverse intact, and these tests need a model that no
    path converts. Returned as env for run_cli too."""
    env = {"EDGEKIT_TOOLS_DIR": "/proc/edgekit-no-tools"}
    monkeypatch.setenv("EDGEKIT_TOOLS_DIR", env["EDGEKIT_TOOLS_DIR"])
    return env


def _with_unconvertible_node(path: Path) -> Path:
    """Six nodes, one of them an op ONNX Runtime runs and OpenVINO's frontend refuses."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.standard_normal((4, 4)).astype(np.float32), "W")
    eye = numpy_helper.from_array(4 * np.eye(4, dtype=np.float32), "I")
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("MatMul", ["r", "W"], ["m"], name="mm"),
        helper.make_node("Add", ["m", "I"], ["a"], name="shift"),
        helper.make_node("Inverse", ["a"], ["inv"], name="inverse", domain="com.microsoft"),
        helper.make_node("Neg", ["inv"], ["n"], name="neg"),
        helper.make_node("Sigmoid", ["n"], ["y"], name="sig"),
    ]
    return _save(nodes, [w, eye], [4, 4], path, extra_opsets=["com.microsoft"])


def test_reduce_saves_the_smallest_failing_subgraph(tmp_path: Path, no_onnx2tf) -> None:
    pytest.importorskip("openvino")
    import onnx

    from edgekit.convert import convert
    from edgekit.debug.bisect import reduce
    from edgekit.errors import EdgekitError

    src = _with_unconvertible_node(tmp_path / "m.onnx")
    res = reduce(src, "openvino", tmp_path / "small.onnx")
    saved = onnx.load(res.output)
    assert [n.op_type for n in saved.graph.node] == ["Inverse"]
    assert res.nodes_before == 6 and res.nodes_after == 1 and res.first_node == "inverse"
    with pytest.raises(EdgekitError, match="Inverse"):  # the saved subgraph still fails
        convert(res.output, "openvino", tmp_path / "again.xml")


def test_cli_reduce_and_its_errors(tmp_path: Path, no_onnx2tf) -> None:
    pytest.importorskip("openvino")
    src = _with_unconvertible_node(tmp_path / "m.onnx")
    out = tmp_path / "bug.onnx"
    r = run_cli("debug", "reduce", str(src), "--to", "openvino", "--out", str(out), "--json",
                env=no_onnx2tf)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["nodes_after"] == 1 and out.is_file()
    fine = _mlp(tmp_path / "fine.onnx")
    r = run_cli("debug", "reduce", str(fine), "--to", "openvino", "--out", str(tmp_path / "x"),
                env=no_onnx2tf)  # fmt: skip
    assert_user_error(r, "nothing to reduce")


def test_a_refusal_names_the_next_step(tmp_path: Path, no_onnx2tf) -> None:
    pytest.importorskip("openvino")
    src = _with_unconvertible_node(tmp_path / "m.onnx")
    r = run_cli("convert", str(src), "--to", "openvino", "--out", str(tmp_path / "m.xml"),
                env=no_onnx2tf)  # fmt: skip
    assert_user_error(r, "Inverse", "--opset", "edgekit debug reduce m.onnx --to openvino")


def test_a_wrong_conversion_names_the_node_where_it_diverges(tmp_path: Path) -> None:
    """OpenVINO's CPU computes a float64 model in float32: the refusal names the first node."""
    pytest.importorskip("openvino")
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    c = numpy_helper.from_array(np.array([1.5, 2.0, 3.0], np.float64), "C")
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu64"),
        helper.make_node("Add", ["r", "C"], ["e"], name="add64"),
        helper.make_node("Neg", ["e"], ["y"], name="neg64"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [2, 3])], [c],
    )  # fmt: skip
    path = tmp_path / "double.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    r = run_cli("convert", str(path), "--to", "openvino", "--out", str(tmp_path / "d.xml"))
    assert_user_error(r, "fp64 tolerance", "first node that diverges is 'relu64' (Relu)",
                      "target computes float32", "samples of your data",
                      "edgekit debug reduce double.onnx --to openvino")  # fmt: skip
    # A hop that failed is said once, not again for every longer path through it.
    assert r.stderr.count("is already at opset 17") == 1, r.stderr
    assert r.stderr.count("onnxslim finds nothing to simplify") == 1, r.stderr
    assert not (tmp_path / "d.xml").exists()


def test_a_planted_error_in_a_tflite_result_is_named(tmp_path: Path, onnx2tf_env) -> None:
    """One weight of the second MatMul edited in onnx2tf's flatbuffer: onnx2tf keeps no ONNX
    names (it fuses MatMul + Add + Clip), so tensors map by value, and 'mm2' is blamed."""
    from onnx import numpy_helper

    from edgekit.convert import convert
    from edgekit.debug import first_divergence

    src = _mlp(tmp_path / "m.onnx")
    res = convert(src, "tflite", tmp_path / "m.tflite")
    assert first_divergence(src, res.model) is None  # the faithful result has no culprit
    import onnx

    w2 = next(numpy_helper.to_array(t) for t in onnx.load(str(src)).graph.initializer
              if t.name == "W2")  # fmt: skip
    data = bytearray(res.model.path.read_bytes())
    for layout in (w2, w2.T):
        at = data.find(np.ascontiguousarray(layout).tobytes())
        if at >= 0:
            break
    assert at >= 0, "W2 is not stored as one buffer in the flatbuffer"
    first = np.frombuffer(bytes(data[at : at + 4]), np.float32)[0]
    data[at : at + 4] = np.float32(first + 3.0).tobytes()
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(bytes(data))
    found = first_divergence(src, broken)
    assert found is not None and (found.node, found.op) == ("mm2", "MatMul"), found
    assert found.max_abs_error > found.bound and "mm2" in found.sentence()
