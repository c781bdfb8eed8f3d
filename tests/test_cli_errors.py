"""Every bad input ends in exit code 2 and one sentence, never a traceback.

The refusals run in this process (`invoke_cli`); `--debug` and a model a runtime
opens run as a user would, in a fresh `python -m edgekit`.
"""

from __future__ import annotations

import pytest

from tests.conftest import assert_user_error, invoke_cli, run_cli


def test_missing_path(tmp_path):
    assert_user_error(invoke_cli("inspect", str(tmp_path / "nope.tflite")), "no such file")


def test_empty_file(tmp_path):
    (tmp_path / "empty.tflite").write_bytes(b"")
    assert_user_error(invoke_cli("inspect", str(tmp_path / "empty.tflite")), "empty")


def test_truncated_tflite(shared_models, tmp_path):
    data = (shared_models / "micro_speech_quantized.tflite").read_bytes()
    (tmp_path / "cut.tflite").write_bytes(data[: len(data) // 3])
    assert_user_error(invoke_cli("inspect", str(tmp_path / "cut.tflite")), "truncated")


def test_random_bytes_named_onnx(tmp_path):
    import numpy as np

    (tmp_path / "random.onnx").write_bytes(np.random.default_rng(0).bytes(4096))
    assert_user_error(
        invoke_cli("inspect", str(tmp_path / "random.onnx")), "not a model edgekit recognizes"
    )


def test_xml_without_bin(tiny_models, tmp_path):
    xml = tmp_path / "lonely.xml"
    xml.write_bytes(tiny_models["openvino"].read_bytes())
    assert_user_error(invoke_cli("inspect", str(xml)), "without its weights file lonely.bin")


def test_folder_that_is_not_a_savedmodel(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "readme.txt").write_text("hi")
    assert_user_error(invoke_cli("inspect", str(tmp_path / "stuff")), "not a SavedModel")


def test_refused_model_still_inspected(shared_models):
    """A runtime refusing a model is reported, not fatal: inspect exits 0."""
    result = run_cli("inspect", str(shared_models / "person_detect.tflite"))
    assert result.returncode == 0
    assert "tensor 33" in result.stdout


@pytest.mark.parametrize("flag", ["--debug"])
def test_debug_shows_traceback(tmp_path, flag):
    result = run_cli(flag, "inspect", str(tmp_path / "nope.onnx"))
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_unknown_command_is_usage_error():
    result = invoke_cli("inspcet")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
