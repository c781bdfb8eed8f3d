"""int8 where it pays (`edgekit.optimize.selective`): the op types whose int8 version is
slower are kept float, measured on the real runtime, and the result verifies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.optimize.selective import find_suspects, float_type


@pytest.fixture(scope="module")
def hard_swish_keras(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Convolutions with hard-swish after each: LiteRT's int8 HARD_SWISH kernel is far
    slower than its float one (measured here: int8 2.8x fp32, int8 with HARD_SWISH float
    0.48x fp32, XNNPACK, 1 thread)."""
    pytest.importorskip("tensorflow")
    import keras

    keras.utils.set_random_seed(0)
    x = inp = keras.Input((64, 64, 8))
    for f in (16, 32):
        x = keras.layers.Conv2D(f, 3, padding="same")(x)
        x = keras.layers.Activation("hard_swish")(x)
        x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
        x = keras.layers.Activation("hard_swish")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(10)(x)
    path = tmp_path_factory.mktemp("hs") / "hs.keras"
    keras.Model(inp, out).save(path)
    return path


def test_litert_keeps_hard_swish_float(hard_swish_keras: Path, tmp_path: Path) -> None:
    from edgekit.optimize import optimize

    # Random weights: int8 flips the top-1 of a few percent of random inputs, so the
    # budget is wide; what is tested is which ops stay float, and that it verifies.
    res = optimize(hard_swish_keras, "rpi4", out=tmp_path / "o", quantize="auto",
                   calib_samples=32, max_float_layers=0, graph_opt=False,
                   max_accuracy_drop=20.0)  # fmt: skip
    rep = res.report
    cands = {c["name"]: c for c in rep["candidates"]}
    sel, plain = cands["int8-where-it-pays"], cands["int8"]
    # HARD_SWISH's int8 kernel is several times slower; a cheap op (MEAN) may be kept too
    # when its island happens to time faster on this noisy machine, each with its reason
    kept = sel["kept_float"]
    assert sel["error"] is None and "HARD_SWISH" in kept and len(kept) <= 2
    assert sel["parity"]["cosine"] > 0.99  # verified against the fp32 baseline
    assert sel["vs_baseline"]["verdict"] == "faster"  # than fp32, where plain int8 is slower
    assert plain["vs_baseline"]["latency_ratio"] > sel["vs_baseline"]["latency_ratio"]
    assert rep["optimized"]["precision"] == "int8" and rep["kept_float"] == kept
    why = rep["int8_where_it_pays"]["why"]
    assert [w.split(":")[0] for w in why] == kept
    assert "HARD_SWISH" in res.markdown_path.read_text()
    # The float island was made by TFLite's own denylist: HARD_SWISH runs float there.
    from edgekit.model import load

    hist = load(res.model_path).op_histogram
    assert hist["HARD_SWISH"] == 4 and hist["DEQUANTIZE"] > 1


def test_suspects_are_types_slower_in_int8() -> None:
    fp32 = {"c1": {"op": "Conv", "ms": 1.0}, "a1": {"op": "Add", "ms": 0.05},
            "h1": {"op": "HardSwish", "ms": 0.2}, "m1": {"op": "Mul", "ms": 0.1}}  # fmt: skip
    # ORT's fused QLinear kernels keep the node's name; a kernel named otherwise is typed
    # by its own op (QLinearMul is a Mul); Q/DQ nodes are no op type of the model's.
    int8 = {"c1": {"op": "QLinearConv", "ms": 0.3}, "a1": {"op": "QLinearAdd", "ms": 0.4},
            "h1": {"op": "HardSwish", "ms": 0.2}, "m1_q": {"op": "QLinearMul", "ms": 0.3},
            "x_QuantizeLinear": {"op": "QuantizeLinear", "ms": 0.1}}  # fmt: skip
    fp32["r1"] = {"op": "Reorder", "ms": 0.01}  # OpenVINO's layout node: not the model's
    int8["r1"] = {"op": "Reorder", "ms": 0.5}
    hist = {"Conv": 1, "Add": 1, "HardSwish": 1, "Mul": 1}
    got = find_suspects(fp32, int8, hist, ("Conv",))
    assert [s.op for s in got] == ["Add", "Mul"]  # most time lost first; Conv never
    assert got[0].profiled() == "0.400 ms int8 vs 0.050 ms float (per-op profile)"
    assert float_type("QGemm") == "Gemm" and float_type("QuantizeLinear") == "QuantizeLinear"
    # Without per-op times (LiteRT) every non-compute, non-plumbing type is tried.
    lite = find_suspects(None, None, {"CONV_2D": 5, "HARD_SWISH": 4, "RESHAPE": 1, "MEAN": 1},
                         ("CONV_2D",))  # fmt: skip
    assert [s.op for s in lite] == ["HARD_SWISH", "MEAN"]


def test_ort_profile_maps_int8_nodes_to_their_graph_nodes(tmp_path: Path) -> None:
    """`node_times` of a real QDQ model: the int8 conv that ORT rebuilt is typed as the
    graph's Conv, and the quantize/dequantize nodes are timed on their own."""
    pytest.importorskip("onnxruntime")
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(8, 4, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["y"], ["z"], name="relu")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 16, 16])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 8, 16, 16])], [w],
    )  # fmt: skip
    src = tmp_path / "f.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), src)
    from edgekit.optimize._tools import node_times
    from edgekit.optimize.quantize import quantize

    x = rng.normal(size=(8, 4, 16, 16)).astype(np.float32)
    q = quantize(src, "onnx", "int8", tmp_path / "q.onnx", calib=x)
    f_nodes = node_times(src, x[:1], runtime="onnxruntime")["nodes"]
    q_nodes = node_times(q, x[:1], runtime="onnxruntime")["nodes"]
    assert any(n["op"] == "Conv" and n["ms"] > 0 for n in f_nodes.values())
    assert q_nodes["conv"]["op"] == "Conv"  # ORT's rebuilt conv_token_N, by its graph name
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n["op"] for n in q_nodes.values()}
