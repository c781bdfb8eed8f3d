"""ONNX -> TFLite through onnx2tf in its tool environment, verified against ONNX Runtime;
and deploy's limits checked on the source before any conversion."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import assert_user_error, run_cli


def _save(graph, path: Path, opset: int = 13) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def conv_relu(path: Path, channels_last: bool = False) -> Path:
    """A Conv+Relu image model in ONNX's NCHW layout; `channels_last`: it takes NHWC and
    transposes it first, as a PyTorch model that permutes its input exports."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b")
    nodes = [helper.make_node("Conv", ["t" if channels_last else "x", "w", "b"], ["c"],
                              pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]  # fmt: skip
    shape = [1, 3, 16, 16]
    if channels_last:
        nodes.insert(0, helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]))
        shape = [1, 16, 16, 3]
    graph = helper.make_graph(
        nodes, "conv_relu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])], [w, b])  # fmt: skip
    return _save(graph, path)


def matmul(path: Path, n_in: int = 16, n_out: int = 10) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(
        np.random.default_rng(1).standard_normal((n_in, n_out)).astype(np.float32), "w")  # fmt: skip
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n_out])], [w])  # fmt: skip
    return _save(graph, path)


def test_conv_relu_nchw_becomes_nhwc_tflite_verified(tmp_path: Path, onnx2tf_env: None) -> None:
    from edgekit.convert import convert

    res = convert(conv_relu(tmp_path / "conv.onnx"), "tflite", tmp_path / "conv.tflite")
    assert res.verified and res.path == ["onnx", "tflite"] and res.tools == ["onnx2tf"]
    assert res.parity.max_abs_error < 1e-4
    (spec,) = res.model.signature.inputs
    assert list(spec.shape) == [1, 16, 16, 3]  # onnx2tf's output takes NHWC
    assert res.layouts == {spec.name: "nhwc"}
    assert any("takes NHWC" in w for w in res.warnings)


def test_nhwc_input_the_graph_transposes_keeps_its_shape(tmp_path: Path, onnx2tf_env: None) -> None:
    """An input already NHWC (the graph transposes it to NCHW itself) is not transposed
    again: onnx2tf would read [1, 16, 16, 3] as NCHW and make it [1, 16, 3, 16]."""
    from edgekit.convert import convert
    from edgekit.convert.onnx_tflite import channels_last_inputs

    src = conv_relu(tmp_path / "nhwc.onnx", channels_last=True)
    assert channels_last_inputs(src) == ["x"]
    assert channels_last_inputs(conv_relu(tmp_path / "nchw.onnx")) == []
    res = convert(src, "tflite", tmp_path / "nhwc.tflite")
    assert res.verified and res.parity.max_abs_error < 1e-4
    (spec,) = res.model.signature.inputs
    assert list(spec.shape) == [1, 16, 16, 3] and not res.layouts


def test_matmul_to_tflite_verified(tmp_path: Path, onnx2tf_env: None) -> None:
    res = run_cli("convert", str(matmul(tmp_path / "mm.onnx")), "--to", "tflite",
                  "--out", str(tmp_path / "mm.tflite"), "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["verified"] and data["path"] == ["onnx", "tflite"], data
    assert data["input_layouts"] == {}
    assert (tmp_path / "mm.tflite").stat().st_size > 16 * 10 * 4


def test_light_squeezenet_simplified_and_converted(
    tmp_path: Path, shared_models: Path, onnx2tf_env: None
) -> None:
    """IR 3, weights made by ConstantOfShape: onnx2tf alone fails; after onnxslim it converts."""
    from edgekit.convert import convert

    res = convert(shared_models / "light_squeezenet.onnx", "tflite", tmp_path / "sq.tflite")
    assert res.verified, res.to_dict()
    assert res.parity.cosine > 0.9999
    assert list(res.model.signature.inputs[0].shape) == [1, 224, 224, 3]


def test_simplify_folds_constant_of_shape(tmp_path: Path, shared_models: Path) -> None:
    from edgekit.convert.onnx_simplify import simplify
    from edgekit.model import load

    src = load(shared_models / "light_squeezenet.onnx")
    out = load(simplify(src, tmp_path / "slim.onnx"))  # verified against the source on ORT
    assert "ConstantOfShape" in src.op_histogram and "ConstantOfShape" not in out.op_histogram
    # Only the small int64 shape vectors that fed ConstantOfShape are gone.
    assert 0 < src.param_count - out.param_count < 0.01 * src.param_count


def test_bundle_runner_feeds_nchw_to_nhwc_model(tmp_path: Path, onnx2tf_env: None) -> None:
    from edgekit.deploy import deploy

    src = conv_relu(tmp_path / "conv.onnx")
    bundle = deploy(src, "rpi4", tmp_path / "b", precision="fp32", measure=False)
    # Keyed by the bundle model's own input name (onnx2tf's serving_default_x:0).
    assert list(bundle.manifest["conversion"]["input_layouts"].values()) == ["nhwc"]
    x = np.random.default_rng(3).standard_normal((1, 3, 16, 16)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)  # in the source's NCHW layout
    res = run_cli("run", str(bundle.path), "--input", str(tmp_path / "x.npz"),
                  "--output", str(tmp_path / "y.npz"))  # fmt: skip
    assert res.returncode == 0, res.stderr
    import onnxruntime as ort

    (want,) = ort.InferenceSession(str(src)).run(None, {"x": x})
    with np.load(tmp_path / "y.npz") as y:
        got = y[y.files[0]]
    np.testing.assert_allclose(got.transpose(0, 3, 1, 2), want, atol=1e-4)


def test_large_onnx_refused_for_cortex_m_before_conversion(tmp_path: Path) -> None:
    # 1.5 M parameters: 1.4 MiB even at int8, over cortex-m's 1 MiB flash.
    src = matmul(tmp_path / "big.onnx", n_in=1500, n_out=1000)
    started = time.monotonic()
    res = run_cli("deploy", str(src), "--profile", "cortex-m", "--out", str(tmp_path / "b"))
    assert_user_error(res, "1,500,000 parameters", "cortex-m's max_model_bytes of 1 MiB")
    assert time.monotonic() - started < 60  # no conversion, no calibration ran
    assert not (tmp_path / "b").exists()


def test_int8_tflite_from_onnx(tmp_path: Path, onnx2tf_env: None) -> None:
    """The SavedModel onnx2tf writes is quantized by the TFLite backend; the calibration
    inputs, made in the ONNX model's NCHW layout, are transposed for it."""
    from edgekit.model import load
    from edgekit.optimize import optimize
    from edgekit.verify import compare_outputs, model_precision

    src = conv_relu(tmp_path / "conv.onnx")
    res = optimize(src, "rpi4", out=tmp_path / "o", quantize="int8", measure=False)
    assert res.report["optimized"]["precision"] == "int8"
    assert "the onnx source was converted first: onnx -> savedmodel" in res.report["warnings"]
    q = load(res.model_path)
    assert model_precision(q) == "int8" and list(q.signature.inputs[0].shape) == [1, 16, 16, 3]
    parity = compare_outputs(src, q, precision="int8")  # against ONNX Runtime, NCHW inputs
    assert parity.passed and parity.cosine > 0.999, parity.reason


@pytest.mark.slow
def test_onnx2torch_path_when_onnx2tf_fails(tmp_path: Path) -> None:
    """The second ONNX -> TFLite path: with onnx2tf's env broken, the conversion graph goes
    on to onnx2torch + litert-torch in their own env and keeps that result, verified
    against ONNX Runtime (it keeps ONNX's NCHW layout)."""
    from edgekit.convert import convert
    from edgekit.tools import STAMP, TOOLS, env_dir, status

    if status("onnx2torch")["state"] != "ready":
        pytest.skip("no onnx2torch tool env (several GB, never made by a test): run "
                    "`edgekit tools install onnx2torch` to run this test")  # fmt: skip
    tools = tmp_path / "tools"
    broken = tools / TOOLS["onnx2tf"].folder_name  # stamped, but without its python
    broken.mkdir(parents=True)
    (broken / STAMP).write_text(json.dumps({"tool": "onnx2tf"}))
    (tools / TOOLS["onnx2torch"].folder_name).symlink_to(env_dir("onnx2torch"))
    mp = pytest.MonkeyPatch()
    mp.setenv("EDGEKIT_TOOLS_DIR", str(tools))
    try:
        res = convert(conv_relu(tmp_path / "conv.onnx"), "tflite", tmp_path / "conv.tflite")
    finally:
        mp.undo()
    assert res.verified and res.tools == ["onnx2torch + litert-torch"], res.to_dict()
    assert res.attempts[0].tools == ["onnx2tf"] and not res.attempts[0].ok
    assert res.parity.max_abs_error < 1e-4
    assert list(res.model.signature.inputs[0].shape) == [1, 3, 16, 16]


def test_square_nwc_output_verified_on_the_suites_own_data(
    tmp_path: Path, onnx2tf_env: None
) -> None:
    """ONNX's backend model AvgPool1d_stride (opset 6, which ONNX Runtime refuses) gives a
    (2, 3, 3) output that fits NCW and NWC alike: onnx2tf's NWC result must be read in the
    layout nearer the source, and then reproduce the suite's expected output."""
    import onnx
    from onnx import numpy_helper

    from edgekit.convert import convert
    from edgekit.verify import fit_layout, reference_runner

    d = Path(onnx.__file__).parent / "backend/test/data/pytorch-converted/test_AvgPool1d_stride"
    res = convert(d / "model.onnx", "tflite", tmp_path / "ap.tflite")
    assert res.verified and res.reference == "onnx-reference", res
    x, want = (numpy_helper.to_array(onnx.load_tensor(str(d / f"test_data_set_0/{n}.pb")))
               for n in ("input_0", "output_0"))  # fmt: skip
    runner = reference_runner(res.model)
    (spec,) = runner.signature.inputs
    assert list(spec.shape) == [2, 6, 3]  # onnx2tf takes NWC
    (got,) = runner.run({spec.name: fit_layout(x, spec.shape)})
    runner.close()
    assert got.shape == (2, 3, 3) and not np.allclose(got, want, atol=1e-5)  # NWC as it comes
    assert np.allclose(np.moveaxis(got, -1, 1), want, atol=1e-5)
