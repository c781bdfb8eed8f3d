"""Inference runtimes behind one Session API, found through a registry.

A new runtime is one module with a `Runtime` subclass plus one line in
`RUNTIMES` (the targets a model is deployed on and benchmarked with) or in
`REFERENCE_RUNTIMES` (`Runtime.reference_only`: Keras, TensorFlow, ONNX's
reference evaluator, which run a model in its own framework or specification for
parity and accuracy checks, so that `open_session` covers every format). Nothing
is imported until a runtime is used, so listing either table loads no framework.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from edgekit.errors import EdgekitError, InputError

if TYPE_CHECKING:
    from edgekit.model import Model
    from edgekit.runtimes.base import Runtime, Session

RUNTIMES: dict[str, str] = {
    "litert": "edgekit.runtimes.litert:LiteRT",
    "onnxruntime": "edgekit.runtimes.onnxruntime:OnnxRuntime",
    "openvino": "edgekit.runtimes.openvino:OpenVINO",
    "tflite-micro": "edgekit.runtimes.tflite_micro:TFLiteMicro",
    "torch": "edgekit.runtimes.torch:Torch",
    "executorch": "edgekit.runtimes.executorch:ExecuTorch",
}

# Runtimes that check results and are never deployed on, listed as targets or benchmarked.
REFERENCE_RUNTIMES: dict[str, str] = {
    "keras": "edgekit.runtimes.keras:Keras",
    "tensorflow": "edgekit.runtimes.tensorflow:TensorFlow",
    "onnx-reference": "edgekit.runtimes.onnx_reference:OnnxReference",
}

# The runtime a format runs on when the user names none.
DEFAULT_RUNTIME = {
    "tflite": "litert",
    "onnx": "onnxruntime",
    "openvino": "openvino",
    "savedmodel": "openvino",
    "torch": "torch",
    "executorch": "executorch",
}

# The runtime a format's own framework runs it on: what its conversions are checked against.
REFERENCE_RUNTIME = {
    "keras": "keras",
    "savedmodel": "tensorflow",
    "torch": "torch",
}


def get_runtime(name: str) -> type[Runtime]:
    """The Runtime class registered under `name`."""
    target = RUNTIMES.get(name) or REFERENCE_RUNTIMES.get(name)
    if target is None:
        raise InputError(
            f"unknown runtime {name!r}; valid runtimes: {', '.join(RUNTIMES)} "
            f"(and, for parity checks, the references {', '.join(REFERENCE_RUNTIMES)})"
        )
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def target_runtimes() -> list[str]:
    """Names of the runtimes a model is deployed on (every runtime but the references)."""
    return list(RUNTIMES)


# OpenVINO's device forms beyond the profile vocabulary's names (HETERO:GPU,CPU; MULTI:...).
_COMPOSITE_DEVICES = ("HETERO", "MULTI")


def runtime_devices() -> list[str]:
    """The device names a local run takes (`bench --device`): the profile vocabulary's
    (CPU, GPU, NPU, TPU, AUTO) and ONNX Runtime's provider short names (cuda, tensorrt, ...)."""
    from edgekit.profile_schema import DEVICES
    from edgekit.runtimes.onnxruntime import PROVIDER_ALIASES

    return [*DEVICES, *(a for a in PROVIDER_ALIASES if a.upper() not in DEVICES)]


def is_runtime_device(name: str) -> bool:
    """Whether `name` is a device a runtime here takes, in any case and with OpenVINO's
    index or composite forms (GPU.1, HETERO:GPU,CPU) or a full ONNX Runtime provider name."""
    base = name.replace(".", ":").split(":", 1)[0].upper()
    known = {d.upper() for d in runtime_devices()} | set(_COMPOSITE_DEVICES)
    return base in known or name.endswith("ExecutionProvider")


def default_runtime(model: Model) -> str:
    """The target runtime a model's format runs on when the user names none."""
    name = DEFAULT_RUNTIME.get(str(model.format))
    if name is None:
        raise EdgekitError(
            f"{model.path}: no runtime runs {model.format} models directly; convert it first "
            f"(`edgekit convert {model.path.name} --to tflite|onnx|openvino`)"
        )
    return name


def reference_runtime(model: Model) -> str:
    """The runtime that is the reference for a model: its own framework where edgekit has it
    (Keras, TensorFlow), else its format's default runtime."""
    return REFERENCE_RUNTIME.get(str(model.format)) or default_runtime(model)


def open_session(
    model: Model | str | os.PathLike,
    runtime: str | None = None,
    *,
    device: str | None = None,
    threads: int | None = None,
    provider: str | None = None,
    options: dict[str, Any] | None = None,
) -> Session:
    """Load `model` on `runtime` and return a Session.

    With `runtime` None, the format's default runtime, or its reference runtime for
    a format no target runtime reads (Keras).
    """
    from edgekit.model import Model, load

    m = model if isinstance(model, Model) else load(model)
    fmt = str(m.format)
    if runtime is None and fmt not in DEFAULT_RUNTIME and fmt in REFERENCE_RUNTIME:
        runtime = REFERENCE_RUNTIME[fmt]
    rt = get_runtime(runtime or default_runtime(m))
    return rt.open(m, device=device, threads=threads, provider=provider, options=options)
