"""Parity checks: same inputs through two models, tolerances by precision, adapted I/O."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import InputError
from edgekit.model import Quantization, Signature, TensorSpec
from edgekit.verify import (
    TOLERANCES,
    compare_outputs,
    fit_layout,
    match_inputs,
    real_values,
    repaired_tflite,
    to_spec,
    tolerance_for,
)


def _keras(path: Path, seed: int, scale: float = 1.0) -> Path:
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((6,), name="x")
    h = keras.layers.Dense(8, activation="relu")(inp)
    out = keras.layers.Dense(4, name="logits")(h)
    m = keras.Model(inp, out)
    if scale != 1.0:
        w, b = m.layers[-1].get_weights()
        m.layers[-1].set_weights([w * scale, b * scale])
    m.save(path)
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("verify")
    return {
        "a": _keras(root / "a.keras", 0),
        "a_again": _keras(root / "a2.keras", 0),
        "b": _keras(root / "b.keras", 1),
        "a_nudged": _keras(root / "a3.keras", 0, scale=1.0 + 3e-3),
    }


def test_identical_models_pass_with_zero_error(pair: dict[str, Path]) -> None:
    p = compare_outputs(pair["a"], pair["a_again"], count=3)
    assert p.passed and p.max_abs_error == 0.0 and p.cosine == pytest.approx(1.0)
    assert p.n_samples == 3 and p.top1_agreement == 1.0 and p.reason == ""


def test_different_models_fail_with_a_reason(pair: dict[str, Path]) -> None:
    p = compare_outputs(pair["a"], pair["b"])
    assert not p.passed
    assert "beyond the fp32 tolerance" in p.reason
    assert p.max_abs_error > 1e-2


def test_tolerance_depends_on_precision(pair: dict[str, Path]) -> None:
    """A 0.3% weight change fails fp32 but passes fp16 bounds; --tolerance overrides."""
    fp32 = compare_outputs(pair["a"], pair["a_nudged"], precision="fp32")
    fp16 = compare_outputs(pair["a"], pair["a_nudged"], precision="fp16")
    assert not fp32.passed and fp16.passed
    loose = compare_outputs(pair["a"], pair["a_nudged"], precision="fp32", tolerance=0.1)
    assert loose.passed and loose.tolerance.atol == 0.1


def test_given_feeds_are_used(pair: dict[str, Path]) -> None:
    feeds = [{"x": np.zeros((2, 6), np.float32)}]
    p = compare_outputs(pair["a"], pair["a_again"], feeds)
    assert p.n_samples == 1 and p.passed


def test_default_tolerances() -> None:
    assert TOLERANCES["fp32"].atol == 1e-3 and TOLERANCES["fp32"].min_cosine >= 0.9999
    assert TOLERANCES["fp16"].atol == 1e-2
    assert tolerance_for("int8").atol is None and tolerance_for("int8").min_top1 == 0.9
    assert tolerance_for("int8-float-fallback") == tolerance_for("int8")
    assert tolerance_for("fp32", 0.5).atol == 0.5
    with pytest.raises(InputError, match="must be positive"):
        tolerance_for("fp32", -1.0)


def test_quantized_io_goes_through_scale_and_zero_point() -> None:
    q = Quantization((0.5,), (-10,))
    src = TensorSpec("in", (1, 3), "int8", q)
    raw = np.array([[-10, 0, 10]], np.int8)
    real = real_values(raw, src)
    assert real.tolist() == [[0.0, 5.0, 10.0]]
    as_float = to_spec(real, raw, src, TensorSpec("in", (1, 3), "float32"))
    assert as_float.dtype == np.float32 and as_float.tolist() == [[0.0, 5.0, 10.0]]
    other = TensorSpec("in", (1, 3), "uint8", Quantization((0.25,), (100,)))
    requant = to_spec(real, raw, src, other)
    assert requant.dtype == np.uint8 and requant.tolist() == [[100, 120, 140]]


def test_layouts_are_matched_by_shape() -> None:
    nhwc = np.zeros((1, 8, 6, 3), np.float32)
    assert fit_layout(nhwc, (1, 3, 8, 6)).shape == (1, 3, 8, 6)
    assert fit_layout(nhwc, (None, 8, 6, 3)).shape == (1, 8, 6, 3)
    assert fit_layout(nhwc.transpose(0, 3, 1, 2), (1, 8, 6, 3)).shape == (1, 8, 6, 3)


def test_inputs_are_matched_by_name_then_position() -> None:
    src = Signature((TensorSpec("a", (1,), "float32"), TensorSpec("b", (1,), "float32")), ())
    dst = Signature(
        (TensorSpec("serving_default_b:0", (1,), "float32"), TensorSpec("serving_default_a:0", (1,), "float32")),
        (),
    )  # fmt: skip
    assert match_inputs(src, dst) == [1, 0]
    anon = Signature((TensorSpec("x0", (1,), "float32"), TensorSpec("x1", (1,), "float32")), ())
    assert match_inputs(src, anon) == [0, 1]


def test_quantized_source_compared_in_real_values(shared_models: Path, tmp_path: Path) -> None:
    from edgekit.convert import convert

    src = shared_models / "micro_speech_quantized.tflite"
    dst = convert(src, "openvino", tmp_path / "ms", verify=False).model
    p = compare_outputs(src, dst)
    assert p.passed and p.precision == "int8" and p.top1_agreement == 1.0


def test_repaired_copy_runs_and_the_original_is_untouched(
    shared_models: Path, tmp_path: Path
) -> None:
    from edgekit.model import load
    from edgekit.runtimes import open_session

    src = load(shared_models / "person_detect.tflite")
    before = src.path.read_bytes()
    fixed = repaired_tflite(src, tmp_path)
    assert fixed is not None and fixed.path.parent == tmp_path
    with open_session(fixed) as s:
        out = s.run({s.signature.inputs[0].name: np.zeros((1, 96, 96, 1), np.int8)})
    assert next(iter(out.values())).shape == (1, 2)
    assert src.path.read_bytes() == before
    assert repaired_tflite(load(shared_models / "hello_world_float.tflite"), tmp_path) is None


def test_a_square_channels_last_output_is_read_in_the_nearer_layout() -> None:
    """(2, 3, 3) fits NCW and NWC alike: the layout nearer the source is compared, so a
    converter's channels-last output is not refused as wrong, and a wrong one still is."""
    import numpy as np

    from edgekit.verify import _closest_layout

    ref = np.arange(18, dtype=np.float32).reshape(2, 3, 3)
    nwc = np.ascontiguousarray(np.moveaxis(ref, 1, -1))
    assert np.array_equal(_closest_layout(nwc, ref), ref)
    assert np.array_equal(_closest_layout(ref.copy(), ref), ref)
    wrong = nwc + 1.0
    assert float(np.abs(_closest_layout(wrong, ref) - ref).max()) == 1.0
