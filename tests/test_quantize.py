"""Each quantization mode of each format on tiny models: it runs, it is really quantized,
and it still computes what the float model does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgekit.optimize import QuantOptions


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tiny conv net with logits out (cosine on logits is meaningful), in three formats."""
    import keras

    from edgekit.convert import convert
    from edgekit.model import load
    from edgekit.verify import reference_runner

    keras.utils.set_random_seed(1)
    inp = keras.Input((10, 10, 1), name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inp)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation="relu", name="hidden")(x)
    km = keras.Model(inp, keras.layers.Dense(4, name="logits")(x))
    rng = np.random.default_rng(0)
    xs = rng.uniform(0, 1, (48, 10, 10, 1)).astype(np.float32)
    out = tmp_path_factory.mktemp("q")
    km.save(out / "f.keras")
    source = load(out / "f.keras")
    onnx_model = convert(source, "onnx", out / "f.onnx").model
    ov_model = convert(onnx_model, "openvino", out / "ov" / "f.xml").model
    feeds = [{source.signature.inputs[0].name: xs}]
    reference = [reference_runner(source).run(f) for f in feeds]
    return {"keras": km, "source": source, "onnx": onnx_model.path, "openvino": ov_model.path,
            "x": xs, "feeds": feeds, "reference": reference, "out": out}  # fmt: skip


def _check(tiny: dict, path: Path, min_cos: float) -> Any:
    from edgekit.verify import compare_outputs

    p = compare_outputs(tiny["source"], path, tiny["feeds"], reference=tiny["reference"])
    assert p.cosine >= min_cos, p
    return p


TFLITE_CASES = [
    ("dynamic", {}, 0.995),
    ("fp16", {}, 0.99999),
    ("int8", {}, 0.98),
    ("int8", {"io_dtype": "int8"}, 0.98),
    ("int8-float-fallback", {}, 0.98),
    ("int16x8", {}, 0.999),
]


@pytest.mark.parametrize("precision,opts,min_cos", TFLITE_CASES)
def test_tflite_modes(tiny: dict, precision: str, opts: dict, min_cos: float) -> None:
    from edgekit.model import load
    from edgekit.optimize.quant_tflite import quantize_tflite

    out = tiny["out"] / f"t-{precision}-{len(opts)}.tflite"
    quantize_tflite(tiny["keras"], out, precision, tiny["x"][:32], QuantOptions(**opts))
    _check(tiny, out, min_cos)
    sig = load(out).signature
    if opts.get("io_dtype") == "int8":
        assert sig.inputs[0].dtype == "int8" and sig.inputs[0].quantization is not None
    else:
        assert sig.inputs[0].dtype == "float32"
    fp32 = quantize_tflite(tiny["keras"], tiny["out"] / "t-fp32.tflite", "fp32").stat().st_size
    if precision != "fp16":
        assert out.stat().st_size < 0.6 * fp32  # int8 weights (tiny model: headers weigh)
    else:
        assert out.stat().st_size < 0.8 * fp32


ONNX_CASES = [
    ("dynamic", {}, 0.995, "DynamicQuantizeLinear"),
    ("int8", {}, 0.98, "QuantizeLinear"),
    ("int8", {"activation_type": "int8"}, 0.98, "QuantizeLinear"),
    ("int8", {"quant_format": "QOperator"}, 0.98, "QLinearConv"),
    ("int8", {"per_channel": False, "calibrate_method": "Entropy"}, 0.95, "QuantizeLinear"),
    ("int8", {"calibrate_method": "Percentile"}, 0.95, "QuantizeLinear"),
    ("int8", {"activation_type": "uint8", "reduce_range": True}, 0.98, "QuantizeLinear"),
    ("int8-float-fallback", {}, 0.98, "QuantizeLinear"),
    ("int16x8", {}, 0.999, "QuantizeLinear"),
    ("fp16", {}, 0.99999, "Cast"),
]


@pytest.mark.parametrize("precision,opts,min_cos,op", ONNX_CASES)
def test_onnx_modes(tiny: dict, precision: str, opts: dict, min_cos: float, op: str) -> None:
    import onnx

    from edgekit.optimize.quant_onnx import quantize_onnx

    out = tiny["out"] / f"o-{precision}-{'-'.join(map(str, opts.values()))}.onnx"
    quantize_onnx(tiny["onnx"], out, precision, tiny["x"][:32], QuantOptions(**opts))
    _check(tiny, out, min_cos)
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert op in ops, ops


def test_onnx_types_follow_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgekit.optimize import quant_onnx

    monkeypatch.setattr(quant_onnx, "_is_arm", lambda: False)
    monkeypatch.setattr(quant_onnx, "has_vnni", lambda: True)
    assert quant_onnx.cpu_types(QuantOptions()) == ("uint8", "int8", False)
    monkeypatch.setattr(quant_onnx, "has_vnni", lambda: False)
    assert quant_onnx.cpu_types(QuantOptions()) == ("uint8", "int8", True)
    assert quant_onnx.cpu_types(QuantOptions(activation_type="int8"))[0] == "int8"
    monkeypatch.setattr(quant_onnx, "_is_arm", lambda: True)
    assert quant_onnx.cpu_types(QuantOptions()) == ("int8", "int8", False)


OV_CASES = [
    ("int8", {}, 0.98),
    ("int8", {"preset": "mixed"}, 0.98),
    ("int8", {"keep_float": ("StatefulPartitionedCall/functional_1/conv_1/convolution",)}, 0.98),
    ("int8-float-fallback", {}, 0.98),
    ("fp16", {}, 0.99999),
]


@pytest.mark.parametrize("precision,opts,min_cos", OV_CASES)
def test_openvino_modes(tiny: dict, precision: str, opts: dict, min_cos: float) -> None:
    import openvino as ov

    from edgekit.optimize.quant_openvino import quantize_openvino

    out = tiny["out"] / f"v-{precision}-{len(opts)}-{opts.get('preset', '')}" / "model.xml"
    quantize_openvino(tiny["openvino"], out, precision, tiny["x"][:32], QuantOptions(**opts))
    _check(tiny, out, min_cos)
    types = [op.get_type_name() for op in ov.Core().read_model(str(out)).get_ops()]
    if precision.startswith("int8"):
        assert "FakeQuantize" in types
    else:
        bin_size = out.with_suffix(".bin").stat().st_size
        assert bin_size < 0.6 * tiny["openvino"].with_suffix(".bin").stat().st_size


def test_openvino_ignored_scope_keeps_a_layer_float(tiny: dict) -> None:
    import openvino as ov

    from edgekit.optimize.quant_openvino import quantize_openvino, unquantized_layers

    model = ov.Core().read_model(str(tiny["openvino"]))
    convs = [
        op.get_friendly_name() for op in model.get_ops() if op.get_type_name() == "Convolution"
    ]
    plain = quantize_openvino(tiny["openvino"], tiny["out"] / "ig0" / "m.xml", "int8", tiny["x"])
    kept = quantize_openvino(tiny["openvino"], tiny["out"] / "ig1" / "m.xml", "int8", tiny["x"],
                             QuantOptions(keep_float=(convs[0],)))  # fmt: skip
    assert convs[0] not in unquantized_layers(ov.Core().read_model(str(plain)))
    assert convs[0] in unquantized_layers(ov.Core().read_model(str(kept)))


@pytest.mark.parametrize("fmt", ["tflite", "onnx", "openvino"])
def test_layer_errors_rank_layers(tiny: dict, fmt: str, capsys: pytest.CaptureFixture) -> None:
    from edgekit.optimize import debug

    source = tiny["keras"] if fmt == "tflite" else tiny[fmt]
    errs = debug.layer_errors(fmt, source, tiny["x"][:16])
    assert "Saved artifact" not in capsys.readouterr().out  # Keras export's listing stays off
    assert errs, "no layer errors"
    assert all(e.error >= 0 for e in errs)
    assert [e.error for e in errs] == sorted((e.error for e in errs), reverse=True)
    assert debug.describe(errs[0]).startswith(f"`{errs[0].name}`")


def test_graph_opt_is_kept_only_when_verified(tiny: dict) -> None:
    from edgekit.optimize.graph_opt import try_graph_opt

    res = try_graph_opt(tiny["onnx"], tiny["out"] / "g.onnx", tiny["x"][:8])
    assert res.max_abs_error is not None and res.max_abs_error < 1e-4
    assert res.kept == (res.path != tiny["onnx"])
    assert res.reason in ("faster and verified", "not faster")
