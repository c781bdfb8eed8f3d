"""LiteRT (TFLite) runtime: ai-edge-litert, else tflite_runtime, else tf.lite."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from edgekit.errors import MissingDependencyError, UnsupportedModelError, first_line
from edgekit.model import Model
from edgekit.runtimes.base import Runtime, Session, check_feeds
from edgekit.vocab import RUNTIME_FORMATS

# Module path of each interpreter, in order of preference.
_INTERPRETERS = (
    ("ai_edge_litert", "ai_edge_litert.interpreter"),
    ("tflite_runtime", "tflite_runtime.interpreter"),
    ("tensorflow", "tensorflow.lite.python.interpreter"),
)


def _interpreter_module() -> tuple[str, Any]:
    for package, module in _INTERPRETERS:
        if importlib.util.find_spec(package) is not None:
            try:
                return package, importlib.import_module(module)
            except ImportError:  # tflite_runtime 2.14 breaks under numpy 2
                continue
    raise MissingDependencyError(
        "no TFLite interpreter is installed (ai-edge-litert); run: pip install 'edgekit[litert]'"
    )


def _explain(model: Model, exc: BaseException) -> str:
    """Turn the interpreter's error into a sentence that names the tensor and why."""
    text = str(exc)
    bad = re.findall(r"Tensor (\d+) has ([^.]+)", text)
    if bad:
        from edgekit.formats.tflite import tensor_names

        names = tensor_names(model)
        index, what = int(bad[0][0]), bad[0][1].strip()
        reason = text[: text.find("Tensor ")].strip().rstrip(".")
        name = names[index] if index < len(names) else "?"
        more = f" (and {len(bad) - 1} more tensors)" if len(bad) > 1 else ""
        return f"tensor {index} '{name}' has {what}: {reason}{more}"
    node = re.search(r"Node number (\d+) \((\w+)\)", text)
    if node:
        return f"node {node.group(1)} ({node.group(2)}): {first_line(exc)}"
    return first_line(exc)


class LiteRTSession(Session):
    runtime = "litert"
    timed_region = "input copy (set_tensor) + invoke + output copy (get_tensor)"
    # an interpreter is not thread-safe; op_times stays the base op histogram, since the
    # Python interpreter exposes no per-op timings
    concurrency_note = "one interpreter per thread"

    def __init__(self, model: Model, interpreter: Any, device: str, threads: int | None) -> None:
        super().__init__(model, model.signature)
        self.interp = interpreter
        self.device = device
        self.threads = threads
        self._in = [d["index"] for d in interpreter.get_input_details()]
        self._out = [d["index"] for d in interpreter.get_output_details()]
        self._names_out = [t.name for t in self.signature.outputs]

    def _resize(self, feeds: dict[str, np.ndarray]) -> None:
        changed = False
        for idx, spec in zip(self._in, self.signature.inputs, strict=True):
            shape = feeds[spec.name].shape
            if tuple(self.interp.get_input_details()[self._in.index(idx)]["shape"]) != shape:
                self.interp.resize_tensor_input(idx, list(shape))
                changed = True
        if changed:
            self.interp.allocate_tensors()

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            self._resize(feeds)
            return self.bind_checked(feeds)()
        except (ValueError, RuntimeError) as exc:
            raise UnsupportedModelError(
                f"{self.model.path}: LiteRT failed to run the model: {_explain(self.model, exc)}"
            ) from None

    def bind(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], Any]:
        """A callable doing exactly what an application does per call: copy each input in
        (set_tensor), invoke, copy each output out (get_tensor); it returns the outputs
        in order, without building a dict, so that µs-scale models are not charged for it."""
        checked = check_feeds(self.signature, feeds, self.model)
        self._resize(checked)
        set_tensor, invoke, get_tensor = (
            self.interp.set_tensor,
            self.interp.invoke,
            self.interp.get_tensor,
        )
        pairs = [
            (idx, checked[spec.name])
            for idx, spec in zip(self._in, self.signature.inputs, strict=True)
        ]
        outs = list(self._out)
        if len(pairs) == 1 and len(outs) == 1:
            (i0, a0), o0 = pairs[0], outs[0]

            def call_one() -> np.ndarray:
                set_tensor(i0, a0)
                invoke()
                return get_tensor(o0)

            return call_one

        def call() -> list[np.ndarray]:
            for idx, arr in pairs:
                set_tensor(idx, arr)
            invoke()
            return [get_tensor(i) for i in outs]

        return call

    def bind_checked(self, feeds: dict[str, np.ndarray]) -> Callable[[], dict[str, np.ndarray]]:
        pairs = [
            (idx, feeds[spec.name])
            for idx, spec in zip(self._in, self.signature.inputs, strict=True)
        ]
        interp, outs, names = self.interp, self._out, self._names_out
        set_tensor, invoke, get_tensor = interp.set_tensor, interp.invoke, interp.get_tensor

        def call() -> dict[str, np.ndarray]:
            for idx, arr in pairs:
                set_tensor(idx, arr)
            invoke()
            return {n: get_tensor(i) for n, i in zip(names, outs, strict=True)}

        return call

    def close(self) -> None:
        self.interp = None


class LiteRT(Runtime):
    name = "litert"
    formats = RUNTIME_FORMATS[name]
    package = "ai-edge-litert"
    extra = "litert"

    @classmethod
    def available(cls) -> bool:
        return any(importlib.util.find_spec(p) is not None for p, _ in _INTERPRETERS)

    @classmethod
    def version(cls) -> str | None:
        from importlib.metadata import PackageNotFoundError, version

        for dist in ("ai-edge-litert", "tflite-runtime", "tensorflow"):
            try:
                return version(dist)
            except PackageNotFoundError:
                continue
        return None

    @classmethod
    def interpreter_package(cls) -> str:
        """The package whose interpreter runs models here (importing it)."""
        return _interpreter_module()[0]

    @classmethod
    def import_framework(cls) -> None:
        _interpreter_module()

    @classmethod
    def open(
        cls,
        model: Model,
        *,
        device: str | None = None,
        threads: int | None = None,
        provider: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Session:
        cls.check_format(model)
        if device not in (None, "CPU", "cpu"):
            raise UnsupportedModelError(
                f"the litert runtime here runs on CPU only (asked for device {device!r}); "
                "GPU and NPU delegates run on the target device"
            )
        _, mod = _interpreter_module()
        model.signature  # noqa: B018 - read the flatbuffer first: a damaged file is a ModelError
        try:
            interp = mod.Interpreter(model_path=str(model.path), num_threads=threads)
            interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise UnsupportedModelError(
                f"{model.path}: LiteRT refuses this model: {_explain(model, exc)}"
            ) from None
        return LiteRTSession(model, interp, "CPU", threads)

    # --- what a deploy bundle needs (see Runtime) ---

    @classmethod
    def serves(cls, profile_runtime: str) -> bool:
        # TFLite Micro runs the same flatbuffers; a host checks them with LiteRT.
        return profile_runtime in (cls.name, "tflite-micro")

    @classmethod
    def bundle_requirement(cls, providers: Sequence[str] = ()) -> dict[str, Any]:
        return {"package": cls.package, "requirement": cls.min_requirement(cls.package),
                "alternatives": ["tflite-runtime", "tensorflow"],
                "module": "ai_edge_litert"}  # fmt: skip

    @classmethod
    def host_placement(
        cls, device: str, providers: Sequence[str] = (), delegate: str | None = None
    ) -> tuple[str, str | None, str | None]:
        note = None
        if device != "CPU" or (delegate or "none") not in ("none", "xnnpack"):
            note = f"the {delegate or device} delegate runs on the target only; measured on CPU"
        return "CPU", (providers[0] if providers else None), note
