"""TensorFlow, reference only: a SavedModel's serving signature run in-process.

A SavedModel's deployment runtime is OpenVINO (`DEFAULT_RUNTIME`); this one is
what a conversion from a SavedModel is verified against.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.model import Model
from edgekit.runtimes.base import Session
from edgekit.runtimes.reference import ReferenceRuntime
from edgekit.vocab import RUNTIME_FORMATS


class TensorFlowSession(Session):
    runtime = "tensorflow"
    device = "CPU"
    timed_region = "the SavedModel's serving function on tf.constant inputs, outputs to numpy"

    def __init__(self, model: Model, loaded: Any, fn: Any) -> None:
        super().__init__(model, model.signature)
        self.loaded = loaded  # the serving function holds no reference to its variables' owner
        self.fn = fn

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        res = self.fn(**{k: tf.constant(v) for k, v in feeds.items()})
        return {t.name: np.asarray(res[t.name]) for t in self.signature.outputs}

    def close(self) -> None:
        self.loaded = self.fn = None


class TensorFlow(ReferenceRuntime):
    name = "tensorflow"
    formats = RUNTIME_FORMATS[name]
    package = "tensorflow"
    module = "tensorflow"

    @classmethod
    def load(cls, model: Model) -> Session:
        from edgekit.formats.savedmodel import load_savedmodel, serving_function

        loaded = load_savedmodel(model)
        return TensorFlowSession(model, loaded, serving_function(model, loaded))
