"""OpenVINO runtime: IR, ONNX, TFLite and SavedModel on CPU, GPU, NPU or AUTO."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from edgekit.errors import UnsupportedModelError
from edgekit.formats.openvino import explain_error, read_model
from edgekit.model import Model
from edgekit.runtimes.base import Runtime, Session, check_feeds

_VIRTUAL_DEVICES = ("AUTO", "MULTI", "HETERO")


def _core() -> Any:
    import openvino as ov

    return ov.Core()


def compile_config(device: str, threads: int | None, options: Mapping[str, Any] | None) -> dict:
    """Latency-oriented settings; f32 on CPU so that parity checks compare like with like.

    OpenVINO's CPU plugin otherwise runs in bf16 on CPUs with AVX-512 BF16 or AMX.
    """
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if device.startswith("CPU"):
        config["INFERENCE_PRECISION_HINT"] = "f32"
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
    config.update(options or {})
    return config


class OpenVINOSession(Session):
    runtime = "openvino"
    timed_region = (
        "set_input_tensor (pre-built ov.Tensor sharing the input's memory, no copy) + "
        "infer_request.infer (outputs read as views)"
    )

    def __init__(self, model: Model, compiled: Any, device: str, threads: int | None) -> None:
        super().__init__(model, model.signature)
        self.compiled = compiled
        self.device = device
        self.threads = threads
        self.request = compiled.create_infer_request()
        if not device.upper().startswith("CPU"):
            # a synchronous infer() returns after the device finished and outputs are readable
            self.timed_region = (
                f"infer_request.infer on {device}, synchronous (returns after the device "
                "finished): host-to-device input transfer + inference + output made readable "
                "on the host (outputs read as views)"
            )
        self._names_out = [t.name for t in self.signature.outputs]
        if len(self._names_out) != len(compiled.outputs):
            self._names_out = [f"output_{i}" for i in range(len(compiled.outputs))]

    def _ordered(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [feeds[spec.name] for spec in self.signature.inputs]

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            res = self.request.infer(self._ordered(feeds))
        except RuntimeError as exc:
            raise UnsupportedModelError(
                f"{self.model.path}: OpenVINO failed to run the model: {explain_error(exc)}"
            ) from None
        return {
            n: np.array(res[p]) for n, p in zip(self._names_out, self.compiled.outputs, strict=True)
        }

    def bind(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], Any]:
        """Wrap each input once in an ov.Tensor sharing the array's memory; per call, set
        those tensors and infer with outputs as views. This skips the per-call Tensor
        creation of `infer(arrays, share_inputs=True)`, measured ~2-3 % slower on
        SqueezeNet, and is what benchmark_app does (set_input_tensors + infer)."""
        import openvino as ov

        arrays = self._ordered(check_feeds(self.signature, feeds, self.model))
        tensors = [ov.Tensor(np.ascontiguousarray(a), shared_memory=True) for a in arrays]
        request = self.request
        set_tensor, infer = request.set_input_tensor, request.infer
        if len(tensors) == 1:
            t0 = tensors[0]

            def call_one() -> Any:
                set_tensor(0, t0)
                return infer(share_outputs=True)

            return call_one
        indexed = list(enumerate(tensors))

        def call() -> Any:
            for i, t in indexed:
                set_tensor(i, t)
            return infer(share_outputs=True)

        return call

    def close(self) -> None:
        self.request = None
        self.compiled = None


class OpenVINO(Runtime):
    name = "openvino"
    formats = ("openvino", "onnx", "tflite", "savedmodel")
    package = "openvino"

    @classmethod
    def available(cls) -> bool:
        return importlib.util.find_spec("openvino") is not None

    @classmethod
    def version(cls) -> str | None:
        if not cls.available():
            return None
        import openvino as ov

        return ov.get_version()

    @classmethod
    def devices(cls) -> list[str]:
        return list(_core().available_devices) if cls.available() else []

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
        cls.require()
        cls.check_format(model)
        device = (device or "CPU").upper()
        core = _core()
        if device.split(":")[0] not in _VIRTUAL_DEVICES and device not in core.available_devices:
            raise UnsupportedModelError(
                f"OpenVINO device {device} is not present here "
                f"(available: {', '.join(core.available_devices)}, AUTO)"
            )
        model.signature  # noqa: B018 - a damaged file is a ModelError before OpenVINO sees it
        ov_model = read_model(model)
        try:
            compiled = core.compile_model(
                ov_model, device, compile_config(device, threads, options)
            )
        except RuntimeError as exc:
            raise UnsupportedModelError(
                f"{model.path}: OpenVINO cannot compile this model for {device}: {explain_error(exc)}"
            ) from None
        return OpenVINOSession(model, compiled, device, threads)

    # --- what a deploy bundle needs (see Runtime) ---

    @classmethod
    def host_placement(
        cls, device: str, providers: Sequence[str] = (), delegate: str | None = None
    ) -> tuple[str, str | None, str | None]:
        try:
            present = cls.devices()
        except Exception:  # a broken openvino install: opening the session will say why
            present = []
        provider = providers[0] if providers else None
        if device in present or device == "AUTO":
            return device, provider, None
        return "CPU", provider, f"{device} is not present here; measured on CPU"
