"""OpenVINO runtime: IR, ONNX, TFLite and SavedModel on CPU, GPU, NPU or AUTO."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from edgekit.errors import InputError, UnsupportedModelError
from edgekit.formats.openvino import explain_error, read_model
from edgekit.model import Model
from edgekit.runtimes.base import Runtime, Session, check_feeds
from edgekit.runtimes.concurrent import Requests
from edgekit.vocab import INFERENCE_PRECISIONS, RUNTIME_FORMATS

_VIRTUAL_DEVICES = ("AUTO", "MULTI", "HETERO")
# Exec-graph node types that move or hold data rather than compute.
_NOT_COMPUTE = frozenset({"Const", "Input", "Output", "Parameter", "Result", "Reorder", "Reshape"})


def _core() -> Any:
    import openvino as ov

    return ov.Core()


def compile_config(device: str, threads: int | None, options: Mapping[str, Any] | None) -> dict:
    """Latency-oriented settings; f32 on CPU so that parity checks compare like with like,
    unless `options` name another INFERENCE_PRECISION_HINT (`OpenVINO.precision_options`).

    OpenVINO's CPU plugin otherwise runs in bf16 on CPUs with AVX-512 BF16 or AMX.
    """
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if device.startswith("CPU"):
        config["INFERENCE_PRECISION_HINT"] = "f32"
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
    config.update(options or {})
    return config


class AsyncRequests(Requests):
    """OpenVINO's AsyncInferQueue over a model compiled with one stream per request.

    `step` waits for an idle request, then starts it on the next input (shared
    memory, no copy); a sample spans start_async to the completion callback, so it
    holds no queueing. The stop rules judge the count of requests started.
    """

    def __init__(
        self, session: OpenVINOSession, feeds: Sequence[Mapping[str, np.ndarray]], concurrency: int
    ) -> None:
        import openvino as ov

        pc = self._pc = time.perf_counter_ns
        self._arrays = [[f[s.name] for s in session.signature.inputs] for f in feeds]
        self._queue = ov.AsyncInferQueue(session.compiled, concurrency)
        self._done: list[int] = []
        self._queue.set_callback(lambda request, start: self._done.append(pc() - start))
        self._started = 0
        threads = session.compiled.get_property("INFERENCE_NUM_THREADS")
        self._region = (
            f"AsyncInferQueue with {concurrency} requests in flight (NUM_STREAMS={concurrency}, "
            f"INFERENCE_NUM_THREADS={threads}): "
            "each sample spans start_async on an idle request (shared input memory, no queueing) "
            "to its completion callback; "
            "throughput = completed requests / wall time"
        )

    @property
    def timed_region(self) -> str:
        return self._region

    def start(self) -> None:
        self._done.clear()
        self._started = 0

    def step(self) -> int:
        # wait for a free request first, so a sample does not include queueing
        self._queue.get_idle_request_id()
        arrays = self._arrays[self._started % len(self._arrays)]
        self._queue.start_async(arrays, userdata=self._pc(), share_inputs=True)
        self._started += 1
        return self._started

    def finish(self) -> None:
        self._queue.wait_all()

    def samples(self) -> np.ndarray:
        return np.asarray(self._done, dtype=np.int64)


class OpenVINOSession(Session):
    runtime = "openvino"
    timed_region = (
        "set_input_tensor (pre-built ov.Tensor sharing the input's memory, no copy) + "
        "infer_request.infer (outputs read as views)"
    )

    def __init__(
        self,
        model: Model,
        compiled: Any,
        device: str,
        threads: int | None,
        *,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(model, model.signature)
        self.compiled = compiled
        self.device = device
        self.threads = threads
        self._config = dict(config or {})
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

    def _profile(self, feeds: Mapping[str, np.ndarray], runs: int) -> tuple[Any, list[Any]]:
        """(the model read again, OpenVINO's profiling info after `runs` inferences of it
        compiled with PERF_COUNT on)."""
        arrays = self._ordered(check_feeds(self.signature, feeds, self.model))
        # read again rather than kept: holding the graph would add its weights to the RSS
        config = {**self._config, "PERF_COUNT": True}
        model = read_model(self.model)
        request = _core().compile_model(model, self.device, config).create_infer_request()
        for _ in range(runs):
            request.infer(arrays)
        return model, list(request.get_profiling_info())

    def op_times(self, feeds: Mapping[str, np.ndarray], runs: int = 10) -> dict[str, Any]:
        """Time per executed node type in ms for one inference (OpenVINO's profiling info
        after `runs` inferences), from the model compiled again with PERF_COUNT on."""
        out: dict[str, float] = {}
        for info in self._profile(feeds, runs)[1]:
            key = f"{info.node_type} ({info.exec_type})"
            out[key] = out.get(key, 0.0) + info.real_time.total_seconds() * 1e3
        return {"unit": "ms per inference", "ops": out}

    def node_times(self, feeds: Mapping[str, np.ndarray], runs: int = 10) -> dict[str, Any]:
        """Time per executed node in ms for one inference; "op" is the model's op type of
        the node of that friendly name (a fused node keeps its main op's), else the
        plugin's node type."""
        model, infos = self._profile(feeds, runs)
        types = {op.get_friendly_name(): op.get_type_name() for op in model.get_ops()}
        out: dict[str, dict[str, Any]] = {}
        for info in infos:
            node = out.setdefault(info.node_name,
                                  {"op": types.get(info.node_name, info.node_type), "ms": 0.0})  # fmt: skip
            node["ms"] += info.real_time.total_seconds() * 1e3
        return {"unit": "ms per inference", "nodes": out}

    def inference_precision(self) -> dict[str, Any] | None:
        """INFERENCE_PRECISION_HINT as compiled, and the count of executed nodes per runtime
        precision in the exec graph (constants and layout reorders left out): "ran" is the
        precision most compute nodes ran in. A fused Snippets "Subgraph" node states its
        I/O precision (f32) even where it computes in bf16 inside, so both are recorded."""
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        counts: dict[str, int] = {}
        for op in self.compiled.get_runtime_model().get_ordered_ops():
            rt = op.get_rt_info()
            if "runtimePrecision" not in rt or "layerType" not in rt:
                continue
            if rt["layerType"].astype(str) in _NOT_COMPUTE:
                continue
            prec = rt["runtimePrecision"].astype(str)
            counts[prec] = counts.get(prec, 0) + 1
        ran = max(counts, key=counts.get) if counts else None
        name = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
        return {"ran": ran, "hint": name, "nodes": counts,
                "source": "compiled model: INFERENCE_PRECISION_HINT and the exec graph's "
                "runtimePrecision per node"}  # fmt: skip

    def concurrent(
        self,
        feeds: Sequence[Mapping[str, np.ndarray]],
        calls: Sequence[Callable[[], Any]],
        concurrency: int,
        open_more: Callable[[], Session],
    ) -> Requests:
        """An AsyncInferQueue of `concurrency` requests on this compiled model (open it with
        `OpenVINO.throughput_options` so that it has as many streams)."""
        return AsyncRequests(self, feeds, concurrency)

    def close(self) -> None:
        self.request = None
        self.compiled = None


class OpenVINO(Runtime):
    name = "openvino"
    formats = RUNTIME_FORMATS[name]
    package = "openvino"
    module = "openvino"
    extra = "openvino"
    # Compilations of one graph ran 2.31-2.74 ms here (benchmarks/ov_same_graph.py); over 6
    # of them an int8-against-bf16 ratio spread half as much as over 2
    # (benchmarks/ov_compilations.py).
    min_loads = 6

    @classmethod
    def version(cls) -> str | None:
        if not cls.available():
            return None
        import openvino as ov

        return ov.get_version()

    @classmethod
    def precision_notes(cls, isa_features: set[str]) -> list[str]:
        if not {"avx512_bf16", "amx_bf16"} & isa_features:
            return []
        return [
            "OpenVINO runs fp32 models in bf16 by default on this CPU; every model here was "
            "measured with INFERENCE_PRECISION_HINT=f32 so that parity compares like with like"
        ]

    @classmethod
    def devices(cls) -> list[str]:
        return list(_core().available_devices) if cls.available() else []

    @classmethod
    def throughput_options(
        cls, concurrency: int, threads: int | None, options: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """One stream per request; `threads` is per request, as on the other runtimes, while
        OpenVINO's INFERENCE_NUM_THREADS is the total over all streams."""
        ov_opts: dict[str, Any] = {
            "PERFORMANCE_HINT": "THROUGHPUT",
            "NUM_STREAMS": str(concurrency),
        }
        if threads:
            ov_opts["INFERENCE_NUM_THREADS"] = threads * concurrency
        return {**ov_opts, **dict(options or {})}

    @classmethod
    def report_options(
        cls, device: str, threads: int | None, options: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """The compile configuration the session used."""
        return {"compile_config": compile_config(device, threads, options)}

    @classmethod
    def precision_options(cls, precision: str) -> dict[str, Any]:
        """INFERENCE_PRECISION_HINT (edgekit pins f32 on CPU unless told otherwise)."""
        if precision not in INFERENCE_PRECISIONS:
            raise InputError(
                f"OpenVINO inference precision {precision!r} is not one of "
                f"{', '.join(INFERENCE_PRECISIONS)}"
            )
        return {"INFERENCE_PRECISION_HINT": precision}

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
        config = compile_config(device, threads, options)
        try:
            compiled = core.compile_model(ov_model, device, config)
        except RuntimeError as exc:
            raise UnsupportedModelError(
                f"{model.path}: OpenVINO cannot compile this model for {device}: {explain_error(exc)}"
            ) from None
        return OpenVINOSession(model, compiled, device, threads, config=config)

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
