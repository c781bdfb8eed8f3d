"""Keras, reference only: a `.keras` (or `.h5`) model run in-process by Keras itself.

The model is loaded by `edgekit.formats.keras.load_keras`: safe mode, and a
refusal of embedded code, unless the user trusts the file (`--trust-model`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.model import Model
from edgekit.runtimes.base import Session
from edgekit.runtimes.reference import ReferenceRuntime, output_names
from edgekit.vocab import RUNTIME_FORMATS


class KerasSession(Session):
    runtime = "keras"
    device = "CPU"
    timed_region = "keras Model.__call__ (training=False), eager, outputs copied to numpy"

    def __init__(self, model: Model, keras_model: Any) -> None:
        super().__init__(model, model.signature)
        self.keras_model = keras_model

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = [feeds[t.name] for t in self.signature.inputs]
        out = self.keras_model(args if len(args) > 1 else args[0], training=False)
        if isinstance(out, dict):
            outs = list(out.values())
        elif isinstance(out, (list, tuple)):
            outs = list(out)
        else:
            outs = [out]
        names = output_names(self, len(outs))
        return {n: np.asarray(o) for n, o in zip(names, outs, strict=True)}

    def close(self) -> None:
        self.keras_model = None


class Keras(ReferenceRuntime):
    name = "keras"
    formats = RUNTIME_FORMATS[name]
    package = "keras"
    module = "keras"

    @classmethod
    def load(cls, model: Model) -> Session:
        from edgekit.formats.keras import load_keras

        return KerasSession(model, load_keras(model))
