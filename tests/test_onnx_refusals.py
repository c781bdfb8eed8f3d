"""Refusals of ONNX models name the op (or input), the converter and the next step."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("onnx")


def _suite_model(name: str) -> Path:
    """A model of ONNX's own backend test data, shipped in the installed onnx package."""
    import onnx

    path = Path(onnx.__file__).parent / "backend" / "test" / "data" / "simple" / name / "model.onnx"
    if not path.is_file():
        pytest.skip(f"this onnx package has no {name}")
    return path


def test_onnx2tf_reasons_name_the_op() -> None:
    """The lines onnx2tf 1.29 prints when it stops (abridged), read for the op they name."""
    from edgekit.convert.onnx_tflite import _why

    missing = ("Traceback (most recent call last):\n  File \"onnx2tf.py\", line 2365, in convert\n"
               "ModuleNotFoundError: No module named 'onnx2tf.ops.Gradient'\n")  # fmt: skip
    assert _why(missing, "") == "it has no conversion for the ONNX op Gradient"
    flex = ("onnx2tf:8:1: error: 'tf.StringUpper' op is neither a custom op nor a flex op\n"
            "onnx2tf:8:1: note: Error code: ERROR_NEEDS_CUSTOM_OPS\n"
            "<unknown>:0: error: failed while converting: 'main': \n")  # fmt: skip
    assert "tf.StringUpper" in _why("", flex) and "no TFLite builtin" in _why("", flex)
    other = (
        "ValueError: axes don't match array\n<unknown>:0: error: failed while converting: 'main'"
    )
    assert "axes don't match array" in _why(other, "")


@pytest.mark.slow
def test_a_string_model_that_converts_says_why_it_cannot_be_verified(tmp_path: Path) -> None:
    """onnx2tf + OpenVINO's TensorFlow frontend convert this StringNormalizer, but edgekit
    generates no strings to check it with (about a minute: the earlier paths fail first)."""
    pytest.importorskip("openvino")
    from edgekit.convert import convert
    from edgekit.errors import VerificationError

    src = _suite_model("test_strnorm_model_monday_casesensintive_nochangecase")
    with pytest.raises(VerificationError) as info:
        convert(src, "openvino", tmp_path / "s.xml")
    msg = str(info.value)
    for part in (
        "converted to openvino via onnx -> savedmodel -> openvino (onnx2tf, OpenVINO",
        "input 'x' has dtype object, which edgekit cannot generate",
        "--no-verify",
    ):
        assert part in msg, msg
    assert not (tmp_path / "s.xml").exists()


@pytest.mark.slow
def test_onnx2tf_on_an_op_it_lacks_names_the_op(tmp_path: Path) -> None:
    """The real onnx2tf on ai.onnx.preview.training Gradient (about 30 s)."""
    from edgekit.convert.graph import EdgeOptions
    from edgekit.convert.onnx_tflite import run
    from edgekit.errors import MissingDependencyError, UnsupportedModelError
    from edgekit.model import load

    src = load(_suite_model("test_gradient_of_add"))
    try:
        with pytest.raises(UnsupportedModelError, match="no conversion for the ONNX op Gradient"):
            run(src, tmp_path / "g.tflite", EdgeOptions())
    except MissingDependencyError:
        pytest.skip("onnx2tf's tool environment is not installed")
