"""Generated inputs valid for the graph: indices within their table, shapes that fit their op.

Each model is built here; every check runs the generated inputs on ONNX Runtime, which
refuses an out-of-range index or a shape that does not broadcast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgekit.inputs import generate_inputs  # noqa: E402
from edgekit.model import load  # noqa: E402


def _save(path: Path, nodes, inputs, outputs, inits=()) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _runs(path: Path, count: int = 4) -> list[dict[str, np.ndarray]]:
    """Generated feeds for the model at `path`, each checked by running it on ONNX Runtime."""
    feeds = generate_inputs(load(path), count=count)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for f in feeds:
        sess.run(None, f)  # raises on an invalid index or shape
    return feeds


def _vi(name: str, dtype: int, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def test_gather_indices_stay_within_the_table_even_through_a_cast(tmp_path: Path) -> None:
    table = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), "table")
    path = _save(
        tmp_path / "embed.onnx",
        [
            helper.make_node("Cast", ["ids"], ["ids64"], to=TensorProto.INT64),
            helper.make_node("Gather", ["table", "ids64"], ["y"], name="embed"),
        ],  # fmt: skip
        [_vi("ids", TensorProto.INT32, [1, 64])],
        [_vi("y", TensorProto.FLOAT, [1, 64, 4])],
        [table],
    )
    ids = np.concatenate([f["ids"].ravel() for f in _runs(path)])
    assert ids.dtype == np.int32 and ids.min() >= 0 and ids.max() <= 2
    assert len(set(ids.tolist())) == 3  # every row of the table is reached, not just row 0
    # Without the graph (a Signature only) the old range 0..10 is kept: it overruns the table.
    plain = generate_inputs(load(path).signature, count=4)
    assert max(int(f["ids"].max()) for f in plain) > 2


def test_gather_elements_indices_follow_the_axis_of_a_graph_input(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "ge.onnx",
        [helper.make_node("GatherElements", ["x", "i"], ["y"], axis=1, name="ge")],
        [_vi("x", TensorProto.FLOAT, [2, 5]), _vi("i", TensorProto.INT64, [2, 30])],
        [_vi("y", TensorProto.FLOAT, [2, 30])],
    )
    i = np.concatenate([f["i"].ravel() for f in _runs(path)])
    assert i.min() >= 0 and i.max() == 4


@pytest.mark.parametrize("length", [2, 3, 4])
def test_expand_shape_inputs_broadcast(tmp_path: Path, length: int) -> None:
    # The backend suite's test_expand_shape_model1-4: X (1, 3, 1) expanded by a shape input.
    path = _save(
        tmp_path / "expand.onnx",
        [helper.make_node("Expand", ["X", "shape"], ["Y"], name="expand")],
        [_vi("X", TensorProto.FLOAT, [1, 3, 1]), _vi("shape", TensorProto.INT64, [length])],
        [_vi("Y", TensorProto.FLOAT, None)],
    )
    shape = _runs(path, count=1)[0]["shape"]
    assert shape.dtype == np.int64
    assert np.broadcast_shapes((1, 3, 1), tuple(shape)) != (1, 3, 1)  # it really expands


def test_reshape_and_tile_shape_inputs_fit(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "reshape.onnx",
        [
            helper.make_node("Relu", ["x"], ["r"]),
            helper.make_node("Reshape", ["r", "shape"], ["y"], name="reshape"),
            helper.make_node("Tile", ["y", "reps"], ["z"], name="tile"),
        ],  # fmt: skip
        [
            _vi("x", TensorProto.FLOAT, ["n", 6]),
            _vi("shape", TensorProto.INT64, [3]),
            _vi("reps", TensorProto.INT64, [3]),
        ],  # fmt: skip
        [_vi("z", TensorProto.FLOAT, None)],
    )
    f = _runs(path)[0]
    assert f["shape"].tolist() == [1, 6, 1] and set(f["reps"].tolist()) <= {1, 2}


def test_convert_verifies_a_model_whose_random_inputs_would_not_run(tmp_path: Path) -> None:
    """The end-to-end point: an Expand-by-input model converts to ONNX at another opset,
    verified, where random integers (0..10) made no reference able to run the source."""
    from edgekit.convert import convert

    path = _save(
        tmp_path / "expand.onnx",
        [helper.make_node("Expand", ["X", "shape"], ["Y"], name="expand")],
        [_vi("X", TensorProto.FLOAT, [1, 3, 1]), _vi("shape", TensorProto.INT64, [3])],
        [_vi("Y", TensorProto.FLOAT, None)],
    )
    res = convert(path, "onnx", tmp_path / "out.onnx", opset=18)
    assert res.parity is not None and res.parity.passed
