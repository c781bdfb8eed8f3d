"""Each quantization mode of each backend on tiny models: it runs, it is really quantized,
and it still computes what the float model does.

One template (`QuantizeTemplate`) runs per backend, as NNCF's shared test templates do:
a backend's subclass names its format, its cases, its source and how to see that a
model is quantized.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgekit.optimize.quantize import backend, describe, layer_errors, quantize


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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each template subclass's CASES become its `case` parameter."""
    if "case" in metafunc.fixturenames and metafunc.cls is not None:
        cases = metafunc.cls.CASES
        ids = [
            f"{p}-{'-'.join(f'{k}={v}' for k, v in o.items()) or 'default'}" for p, o, *_ in cases
        ]
        metafunc.parametrize("case", cases, ids=ids)


class QuantizeTemplate:
    """What every backend must do; a subclass per backend fills in the blanks."""

    FORMAT: str
    CASES: list[tuple[Any, ...]]  # (precision, options, min cosine, backend-specific...)
    SUFFIX = ""

    def source(self, tiny: dict) -> Any:
        return tiny[self.FORMAT]

    def out(self, tiny: dict, name: str) -> Path:
        return tiny["out"] / self.FORMAT / name / f"model{self.SUFFIX}"

    def check(self, tiny: dict, out: Path, case: tuple[Any, ...]) -> None:
        """Backend-specific proof that `out` is quantized as `case` asks."""
        raise NotImplementedError

    def test_mode(self, tiny: dict, case: tuple[Any, ...]) -> None:
        precision, opts, min_cos = case[:3]
        b = backend(self.FORMAT)
        out = self.out(tiny, f"{precision}-{'-'.join(map(str, opts.values()))}")
        made = quantize(self.source(tiny), self.FORMAT, precision, out, tiny["x"][:32],
                        b.Options(**opts))  # fmt: skip
        assert made == out
        _check(tiny, out, min_cos)
        self.check(tiny, out, case)

    def test_the_pass_is_the_backend_behind_the_table(self, tiny: dict) -> None:
        from edgekit.model import load
        from edgekit.optimize import get_pass, quantizer_for
        from edgekit.optimize.quantize import QuantizeConfig

        info = quantizer_for(self.FORMAT)
        out = self.out(tiny, "pass-fp16")
        res = get_pass(info.name).run(self.source(tiny), QuantizeConfig("fp16"), out)
        assert (res.path, res.format, res.precision) == (out, self.FORMAT, "fp16")
        assert str(load(out).format) == self.FORMAT

    def test_layer_errors_rank_layers(self, tiny: dict, capsys: pytest.CaptureFixture) -> None:
        errs = layer_errors(self.source(tiny), self.FORMAT, tiny["x"][:16])
        assert "Saved artifact" not in capsys.readouterr().out  # Keras export's listing stays off
        assert errs, "no layer errors"
        assert all(e.error >= 0 for e in errs)
        assert [e.error for e in errs] == sorted((e.error for e in errs), reverse=True)
        assert describe(errs[0]).startswith(f"`{errs[0].name}`")

    def test_refusals_are_one_sentence(self, tiny: dict) -> None:
        from edgekit.errors import UnsupportedModelError

        with pytest.raises(
            UnsupportedModelError, match="needs calibration samples; pass --calib-data"
        ):
            quantize(self.source(tiny), self.FORMAT, "int8", self.out(tiny, "nocal"), None)
        with pytest.raises(UnsupportedModelError, match="has no precision 'int4'; choose from"):
            quantize(self.source(tiny), self.FORMAT, "int4", self.out(tiny, "int4"), tiny["x"])
        assert not self.out(tiny, "nocal").exists()


class TestTFLite(QuantizeTemplate):
    FORMAT = "tflite"
    SUFFIX = ".tflite"
    CASES = [
        ("dynamic", {}, 0.995),
        ("fp16", {}, 0.99999),
        ("int8", {}, 0.98),
        ("int8", {"io_dtype": "int8"}, 0.98),
        ("int8-float-fallback", {}, 0.98),
        ("int16x8", {}, 0.999),
    ]

    def source(self, tiny: dict) -> Any:
        return tiny["keras"]  # the converter quantizes while it converts

    def check(self, tiny: dict, out: Path, case: tuple[Any, ...]) -> None:
        from edgekit.model import load

        precision, opts = case[:2]
        sig = load(out).signature
        if opts.get("io_dtype") == "int8":
            assert sig.inputs[0].dtype == "int8" and sig.inputs[0].quantization is not None
        else:
            assert sig.inputs[0].dtype == "float32"
        fp32 = quantize(tiny["keras"], "tflite", "fp32", self.out(tiny, "fp32")).stat().st_size
        if precision != "fp16":
            assert out.stat().st_size < 0.6 * fp32  # int8 weights (tiny model: headers weigh)
        else:
            assert out.stat().st_size < 0.8 * fp32


class TestONNX(QuantizeTemplate):
    FORMAT = "onnx"
    SUFFIX = ".onnx"
    CASES = [
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

    def check(self, tiny: dict, out: Path, case: tuple[Any, ...]) -> None:
        import onnx

        ops = {n.op_type for n in onnx.load(str(out)).graph.node}
        assert case[3] in ops, ops

    def test_types_follow_the_cpu(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from edgekit.optimize.quantize import onnx as ort_backend

        opts = ort_backend.ONNXOptions
        monkeypatch.setattr(ort_backend, "is_arm", lambda: False)
        monkeypatch.setattr(ort_backend, "has_vnni", lambda: True)
        assert ort_backend.cpu_types(opts()) == ("uint8", "int8", False)
        monkeypatch.setattr(ort_backend, "has_vnni", lambda: False)
        assert ort_backend.cpu_types(opts()) == ("uint8", "int8", True)
        assert ort_backend.cpu_types(opts(activation_type="int8"))[0] == "int8"
        monkeypatch.setattr(ort_backend, "is_arm", lambda: True)
        assert ort_backend.cpu_types(opts()) == ("int8", "int8", False)
        # auto mode also measures the other signedness, unless the options fix one
        alt = backend("onnx").alternatives(opts())
        assert [o.activation_type for _, o in alt] == ["uint8", None]
        # and Percentile calibration, where the profile fixes the types too
        alt = backend("onnx").alternatives(opts(activation_type="int8"))
        assert [(o.activation_type, o.calibrate_method) for _, o in alt] == [("int8", "Percentile")]
        fixed = opts(activation_type="int8", calibrate_method="Entropy")
        assert backend("onnx").alternatives(fixed) == []


class TestOpenVINO(QuantizeTemplate):
    FORMAT = "openvino"
    SUFFIX = ".xml"
    CASES = [
        ("int8", {}, 0.98),
        ("int8", {"preset": "mixed"}, 0.98),
        ("int8", {"keep_float": ("StatefulPartitionedCall/functional_1/conv_1/convolution",)},
         0.98),
        ("int8-float-fallback", {}, 0.98),
        ("fp16", {}, 0.99999),
    ]  # fmt: skip

    def check(self, tiny: dict, out: Path, case: tuple[Any, ...]) -> None:
        import openvino as ov

        types = [op.get_type_name() for op in ov.Core().read_model(str(out)).get_ops()]
        if case[0].startswith("int8"):
            assert "FakeQuantize" in types
        else:
            bin_size = out.with_suffix(".bin").stat().st_size
            assert bin_size < 0.6 * tiny["openvino"].with_suffix(".bin").stat().st_size

    def test_ignored_scope_keeps_a_layer_float(self, tiny: dict) -> None:
        import openvino as ov

        from edgekit.optimize.quantize.openvino import OpenVINOOptions, unquantized_layers

        model = ov.Core().read_model(str(tiny["openvino"]))
        convs = [
            op.get_friendly_name() for op in model.get_ops() if op.get_type_name() == "Convolution"
        ]
        plain = quantize(tiny["openvino"], "openvino", "int8", self.out(tiny, "ig0"), tiny["x"])
        kept = quantize(tiny["openvino"], "openvino", "int8", self.out(tiny, "ig1"), tiny["x"],
                        OpenVINOOptions(keep_float=(convs[0],)))  # fmt: skip
        assert convs[0] not in unquantized_layers(ov.Core().read_model(str(plain)))
        assert convs[0] in unquantized_layers(ov.Core().read_model(str(kept)))


def test_graph_opt_is_kept_only_when_verified(tiny: dict) -> None:
    from edgekit.optimize import get_pass
    from edgekit.optimize.graph_opt import GraphOptConfig

    res = get_pass("graph_opt").run(
        tiny["onnx"], GraphOptConfig(tiny["x"][:8]), tiny["out"] / "g.onnx"
    )
    g = res.details
    assert g["max_abs_error"] is not None and g["max_abs_error"] < 1e-4
    assert g["kept"] == (res.path != tiny["onnx"])
    assert g["reason"] in ("faster and verified", "not faster")
