"""Format detection from content and signature reading, on real files."""

from __future__ import annotations

import shutil

import pytest

import edgekit
from edgekit.errors import ModelError
from edgekit.model import Format


def test_shared_tflite_signatures(shared_models):
    speech = edgekit.load(shared_models / "micro_speech_quantized.tflite")
    assert speech.format is Format.TFLITE
    (inp,) = speech.signature.inputs
    assert inp.shape == (1, 1960) and inp.dtype == "int8"
    assert inp.quantization.scale == pytest.approx((0.10171568393707275,))
    assert inp.quantization.zero_point == (-128,)
    (out,) = speech.signature.outputs
    assert out.shape == (1, 4) and out.dtype == "int8"
    assert out.quantization.scale == pytest.approx((0.00390625,))

    hello = edgekit.load(shared_models / "hello_world_float.tflite")
    assert hello.signature.inputs[0].shape == (None, 1)  # dynamic batch kept, not turned into 1
    assert hello.op_histogram == {"FULLY_CONNECTED": 3}
    assert hello.param_count == 321

    lstm = edgekit.load(shared_models / "trained_lstm.tflite")
    assert lstm.signature.inputs[0].shape == (1, 28, 28)
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in lstm.op_histogram


def test_shared_onnx_signatures(shared_models):
    resnet = edgekit.load(shared_models / "light_resnet50.onnx")
    assert resnet.format is Format.ONNX
    (inp,) = resnet.signature.inputs
    assert (inp.name, inp.shape, inp.dtype) == ("gpu_0/data_0", (1, 3, 224, 224), "float32")
    assert resnet.signature.outputs[0].shape == (1, 1000)
    assert resnet.op_histogram["Conv"] == 53
    # ResNet-50's weights, made at load by ConstantOfShape (the shape inputs are not weights);
    # counted here from the graph with onnx's own helpers. The file's serialization varies
    # between copies (a stray shape tensor more or less), the weights do not.
    import numpy as np
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(shared_models / "light_resnet50.onnx")
    made = {n.input[0] for n in proto.graph.node if n.op_type == "ConstantOfShape"}
    stored = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    expected = sum(int(np.prod(stored[s])) for s in made) + sum(
        v.size for k, v in stored.items() if k not in made
    )
    assert resnet.param_count == expected
    assert 25_500_000 < expected < 25_700_000  # ResNet-50's well-known ~25.6 M
    squeeze = edgekit.load(shared_models / "light_squeezenet.onnx")
    assert squeeze.signature.outputs[0].shape == (1, 1000, 1, 1)


def test_format_from_content_not_extension(shared_models, tmp_path):
    renamed = tmp_path / "actually_tflite.onnx"
    shutil.copy(shared_models / "person_detect.tflite", renamed)
    assert edgekit.load(renamed).format is Format.TFLITE
    onnx_as_bin = tmp_path / "weights.bin"
    shutil.copy(shared_models / "light_squeezenet.onnx", onnx_as_bin)
    assert edgekit.load(onnx_as_bin).format is Format.ONNX


@pytest.mark.parametrize("kind", ["keras", "h5", "savedmodel", "tflite", "onnx", "openvino"])
def test_tiny_model_every_format(tiny_models, kind):
    model = edgekit.load(tiny_models[kind])
    expected = {"h5": "keras"}.get(kind, kind)
    assert str(model.format) == expected
    (inp,) = model.signature.inputs
    assert inp.dtype == "float32"
    assert inp.shape[1:] == (8, 8, 1)
    assert not isinstance(inp.shape[0], int)  # the dynamic batch survives every format
    assert model.signature.outputs[0].shape[-1] == 3
    # 4 conv filters of 3x3x1 + 4 biases, 144x3 dense + 3 biases (converters may add a shape const)
    assert 475 <= model.param_count <= 480
    assert len(model.sha256) == 64 and model.size_bytes > 0


def test_openvino_ir_counts_both_files(tiny_models):
    model = edgekit.load(tiny_models["openvino"])
    assert [p.suffix for p in model.files] == [".xml", ".bin"]
    assert model.size_bytes == sum(p.stat().st_size for p in model.files)


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("empty.tflite", b"", "empty"),
        ("random.onnx", bytes(range(256)) * 8, "not a model edgekit recognizes"),
        ("notes.xml", b"<html><body/></html>", "not an OpenVINO IR"),
        ("broken.keras", b"PK\x03\x04garbage", "damaged zip"),
    ],
)
def test_bad_files_raise_model_error(tmp_path, name, content, fragment):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ModelError, match=fragment):
        edgekit.load(path)


def test_truncated_tflite_is_a_model_error(shared_models, tmp_path):
    data = (shared_models / "person_detect.tflite").read_bytes()
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(data[:2000])
    with pytest.raises(ModelError, match="damaged or truncated TFLite"):
        _ = edgekit.load(cut).signature
