"""SavedModel reader: the serving signature, its graph's ops and its variables."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.errors import ModelError, first_line
from edgekit.extras import require
from edgekit.formats.base import FormatReader, ModelInfo
from edgekit.signature import Signature, TensorSpec

if TYPE_CHECKING:
    from edgekit.formats.base import ModelFile

SERVING_KEY = "serving_default"


def load_savedmodel(model: ModelFile) -> Any:
    tf = require("tensorflow")
    try:
        return tf.saved_model.load(str(model.path))
    except Exception as exc:  # TF raises many types for damaged folders
        raise ModelError(
            f"{model.path}: TensorFlow cannot load this SavedModel ({first_line(exc)})"
        ) from None


def serving_function(model: ModelFile, loaded: Any) -> Any:
    sigs = loaded.signatures
    if SERVING_KEY in sigs:
        return sigs[SERVING_KEY]
    if len(sigs) == 1:
        return next(iter(sigs.values()))
    raise ModelError(
        f"{model.path}: the SavedModel has no '{SERVING_KEY}' signature "
        f"(it has {sorted(sigs) or 'none'})"
    )


_GRAPH_FILES = ("saved_model.pb", "saved_model.pbtxt")


class SavedModelReader(FormatReader):
    """A TensorFlow SavedModel: a folder holding saved_model.pb (or .pbtxt)."""

    name = "savedmodel"

    def sniff(self, path: Path) -> bool:
        return path.is_dir() and any((path / n).is_file() for n in _GRAPH_FILES)

    def files(self, path: Path) -> list[Path]:
        return sorted(f for f in path.rglob("*") if f.is_file())

    def refusal(self, path: Path) -> str | None:
        if not path.is_dir():
            return None
        return (
            "is a folder but not a SavedModel (no saved_model.pb inside); "
            "pass a model file or a SavedModel folder"
        )

    def read(self, model: ModelFile) -> ModelInfo:
        return _describe(model)


def _describe(model: ModelFile) -> ModelInfo:
    loaded = load_savedmodel(model)
    fn = serving_function(model, loaded)
    _, kwargs = fn.structured_input_signature
    inputs = tuple(
        TensorSpec(name, tuple(spec.shape.as_list()) if spec.shape.rank is not None else None,
                   spec.dtype.name)
        for name, spec in kwargs.items()
    )  # fmt: skip
    outputs = tuple(
        TensorSpec(name, tuple(spec.shape.as_list()) if spec.shape.rank is not None else None,
                   spec.dtype.name)
        for name, spec in fn.structured_outputs.items()
    )  # fmt: skip
    ops = Counter(op.type for op in fn.graph.get_operations()
                  if op.type not in ("Placeholder", "NoOp", "Identity"))  # fmt: skip
    params = sum(int(v.shape.num_elements() or 0) for v in fn.graph.variables)
    return ModelInfo(Signature(inputs, outputs), dict(ops), params)
