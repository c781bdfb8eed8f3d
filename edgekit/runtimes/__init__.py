"""Inference runtimes behind one Session API, found through a registry.

A new runtime is one module with a `Runtime` subclass plus one line in
`RUNTIMES`; nothing is imported until a runtime is used.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from edgekit.errors import EdgekitError

if TYPE_CHECKING:
    from edgekit.model import Model
    from edgekit.runtimes.base import Runtime, Session

RUNTIMES: dict[str, str] = {
    "litert": "edgekit.runtimes.litert:LiteRT",
    "onnxruntime": "edgekit.runtimes.onnxruntime:OnnxRuntime",
    "openvino": "edgekit.runtimes.openvino:OpenVINO",
}

# Runtimes that check results but are never benchmarked, listed or chosen by default.
REFERENCE_RUNTIMES: dict[str, str] = {
    "onnx-reference": "edgekit.runtimes.onnx_reference:OnnxReference",
}

# The runtime a format runs on when the user names none.
DEFAULT_RUNTIME = {
    "tflite": "litert",
    "onnx": "onnxruntime",
    "openvino": "openvino",
    "savedmodel": "openvino",
}


def get_runtime(name: str) -> type[Runtime]:
    """The Runtime class registered under `name`."""
    target = RUNTIMES.get(name) or REFERENCE_RUNTIMES.get(name)
    if target is None:
        raise EdgekitError(f"unknown runtime {name!r}; valid runtimes: {', '.join(RUNTIMES)}")
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def default_runtime(model: Model) -> str:
    name = DEFAULT_RUNTIME.get(str(model.format))
    if name is None:
        raise EdgekitError(
            f"{model.path}: no runtime runs {model.format} models directly; convert it first "
            f"(`edgekit convert {model.path.name} --to tflite|onnx|openvino`)"
        )
    return name


def open_session(
    model: Model | str | os.PathLike,
    runtime: str | None = None,
    *,
    device: str | None = None,
    threads: int | None = None,
    provider: str | None = None,
    options: dict[str, Any] | None = None,
) -> Session:
    """Load `model` on `runtime` (the format's natural one when None) and return a Session."""
    from edgekit.model import Model, load

    m = model if isinstance(model, Model) else load(model)
    rt = get_runtime(runtime or default_runtime(m))
    return rt.open(m, device=device, threads=threads, provider=provider, options=options)
