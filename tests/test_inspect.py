"""`edgekit inspect` on every real model, for every runtime."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli

# What really happens today, per model and runtime (True: loads and runs once).
EXPECTED = {
    "hello_world_float.tflite": {
        "litert": True,
        "onnxruntime": False,
        "openvino": True,
        "tflite-micro": True,
        "torch": False,
        "executorch": False,
    },
    "micro_speech_quantized.tflite": {
        "litert": True,
        "onnxruntime": False,
        "openvino": True,
        "tflite-micro": True,
        "torch": False,
        "executorch": False,
    },
    "person_detect.tflite": {
        "litert": False,
        "onnxruntime": False,
        "openvino": False,
        "tflite-micro": True,
        "torch": False,
        "executorch": False,
    },
    "trained_lstm.tflite": {
        "litert": True,
        "onnxruntime": False,
        "openvino": False,
        "tflite-micro": True,
        "torch": False,
        "executorch": False,
    },
    "light_squeezenet.onnx": {
        "litert": False,
        "onnxruntime": True,
        "openvino": True,
        "tflite-micro": False,
        "torch": False,
        "executorch": False,
    },
    "light_resnet50.onnx": {
        "litert": False,
        "onnxruntime": True,
        "openvino": True,
        "tflite-micro": False,
        "torch": False,
        "executorch": False,
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_inspect_json_every_shared_model(shared_models, name):
    result = run_cli("inspect", str(shared_models / name), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    for key in ("format", "size_bytes", "sha256", "inputs", "outputs", "runtimes", "ops", "params"):
        assert key in info
    assert info["size_bytes"] == (shared_models / name).stat().st_size
    for tensor in info["inputs"] + info["outputs"]:
        assert set(tensor) == {"name", "shape", "dtype", "quantization"}
    ran = {rt: r["ok"] for rt, r in info["runtimes"].items()}
    assert ran == EXPECTED[name]
    for r in info["runtimes"].values():
        assert r["ok"] or r["error"]  # every refusal says why


def test_inspect_sha256_matches_published(shared_models):
    result = run_cli("inspect", str(shared_models / "person_detect.tflite"), "--json")
    info = json.loads(result.stdout)
    assert info["sha256"] == "808cfdfc0cf3a6fa6f6fa26bfa379ea97c16d5db7334637766e39c3408502e9d"
    litert = info["runtimes"]["litert"]["error"]
    assert "tensor 33" in litert and "quantized_dimension" in litert
    assert "out of range" in info["runtimes"]["openvino"]["error"]


def test_inspect_table_output(tiny_models):
    result = run_cli("inspect", str(tiny_models["onnx"]))
    assert result.returncode == 0, result.stderr
    for text in ("format=onnx", "Signature", "image", "Runtimes", "onnxruntime"):
        assert text in result.stdout


def test_devices_json():
    result = run_cli("devices", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["cpu"]["cores_logical"] >= 1
    assert "CPUExecutionProvider" in info["runtimes"]["onnxruntime"]["providers"]
    assert "CPU" in info["runtimes"]["openvino"]["devices"]
    assert info["runtimes"]["litert"]["installed"] is True
