"""ONNX Runtime: CPU by default, any installed execution provider on request."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import UnsupportedModelError, first_line
from edgekit.model import Model
from edgekit.runtimes.base import Runtime, Session, check_feeds
from edgekit.vocab import RUNTIME_FORMATS

# Short names users type -> ONNX Runtime execution provider names.
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
}


def resolve_provider(provider: str | None, device: str | None) -> str:
    """The execution provider name for a user's --provider/--device choice."""
    choice = provider or device or "cpu"
    return PROVIDER_ALIASES.get(choice.lower(), choice)


def session_options(threads: int | None, options: Mapping[str, Any] | None) -> Any:
    """ONNX Runtime SessionOptions for `threads` intra-op threads, run sequentially."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    level = (options or {}).get("graph_optimization_level")
    if level is not None:
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    return so


def _explain(exc: BaseException) -> str:
    text = str(exc)
    node = re.search(r"[Nn]ode(?: name)?[: ]+'?([\w/.:-]+)'?", text)
    op = re.search(r"(?:op_type|OpType|type)[:= ]+'?(\w+)'?", text)
    detail = first_line(exc)
    parts = []
    if op:
        parts.append(f"op {op.group(1)}")
    if node:
        parts.append(f"node {node.group(1)}")
    return f"{', '.join(parts)}: {detail}" if parts else detail


class OrtSession(Session):
    runtime = "onnxruntime"
    timed_region = "session.run with pre-built feed dict (includes output allocation and copy)"
    # run() is thread-safe and releases the GIL: throughput mode's threads share one session
    thread_safe = True
    concurrency_note = "one shared InferenceSession"

    def __init__(
        self,
        model: Model,
        sess: Any,
        provider: str,
        threads: int | None,
        *,
        providers: list[Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(model, model.signature)
        self.sess = sess
        self._providers = providers or [provider]
        self._options = dict(options or {})
        self.provider = provider
        self.device = (
            "GPU" if provider in ("CUDAExecutionProvider", "TensorrtExecutionProvider") else "CPU"
        )
        self.threads = threads
        self._out_names = [o.name for o in sess.get_outputs()]
        if self.device == "GPU":
            # run() with host arrays copies inputs to the device and outputs back, which
            # waits for the device: each timed call is complete, no extra sync needed
            self.timed_region = (
                f"session.run on {provider} with host (numpy) feeds: host-to-device input "
                "copy + inference + device-to-host output copy; synchronous, so the call "
                "returns only after the device finished"
            )

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            outs = self.sess.run(self._out_names, feeds)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidArgument types
            raise UnsupportedModelError(
                f"{self.model.path}: ONNX Runtime failed to run the model: {_explain(exc)}"
            ) from None
        return dict(zip(self._out_names, outs, strict=True))

    def bind(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], Any]:
        checked = check_feeds(self.signature, feeds, self.model)
        run, names = self.sess.run, self._out_names
        return lambda: run(names, checked)

    def _profile(self, feeds: Mapping[str, np.ndarray], runs: int) -> list[dict[str, Any]]:
        """The kernel events of `runs` inferences from ONNX Runtime's session profiler (a
        second session of the same model and settings, with profiling on)."""
        import json
        import tempfile

        import onnxruntime as ort

        checked = check_feeds(self.signature, feeds, self.model)
        so = session_options(self.threads, self._options)
        so.enable_profiling = True
        with tempfile.TemporaryDirectory(prefix="edgekit-profile-") as tmp:
            so.profile_file_prefix = str(Path(tmp) / "ort")
            sess = ort.InferenceSession(str(self.model.path), so, providers=self._providers)
            for _ in range(runs):
                sess.run(None, checked)
            events = json.loads(Path(sess.end_profiling()).read_text())
        return [
            e
            for e in events
            if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")
        ]

    def op_times(self, feeds: Mapping[str, np.ndarray], runs: int = 10) -> dict[str, Any]:
        """Kernel time per op type in ms per inference, from ONNX Runtime's session profiler."""
        out: dict[str, float] = {}
        for e in self._profile(feeds, runs):
            op = e.get("args", {}).get("op_name", "?")
            out[op] = out.get(op, 0.0) + e["dur"] / 1e3 / runs
        return {"unit": "ms per inference", "ops": out}

    def node_times(self, feeds: Mapping[str, np.ndarray], runs: int = 10) -> dict[str, Any]:
        """Kernel time per node in ms per inference, from the session profiler. "op" is the
        graph's op type of the node of that name (ORT's ``_token_N`` suffix, given to a
        node its optimizer rebuilt, removed), else the kernel's op (a fused QLinearConv)."""
        import onnx

        graph = onnx.load(str(self.model.path), load_external_data=False).graph
        types = {n.name: n.op_type for n in graph.node}
        out: dict[str, dict[str, Any]] = {}
        for e in self._profile(feeds, runs):
            name = re.sub(r"_token_\d+$", "", e["name"][: -len("_kernel_time")])
            op = types.get(name, e.get("args", {}).get("op_name", "?"))
            node = out.setdefault(name, {"op": op, "ms": 0.0})
            node["ms"] += e["dur"] / 1e3 / runs
        return {"unit": "ms per inference", "nodes": out}

    def close(self) -> None:
        self.sess = None


class OnnxRuntime(Runtime):
    name = "onnxruntime"
    formats = RUNTIME_FORMATS[name]
    package = "onnxruntime"
    module = "onnxruntime"
    extra = "onnx"
    device_key = "providers"

    @classmethod
    def devices(cls) -> list[str]:
        if not cls.available():
            return []
        import onnxruntime as ort

        return list(ort.get_available_providers())

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
        import onnxruntime as ort

        chosen = resolve_provider(provider, device)
        available = ort.get_available_providers()
        if chosen not in available:
            raise UnsupportedModelError(
                f"ONNX Runtime execution provider {chosen} is not available here "
                f"(available: {', '.join(available)}); install the matching onnxruntime package "
                "(e.g. onnxruntime-gpu for CUDA/TensorRT)"
            )
        so = session_options(threads, options)
        # options["provider_options"]: the EP's own settings, e.g. {"trt_fp16_enable": True}
        provider_options = (options or {}).get("provider_options")
        first = (chosen, dict(provider_options)) if provider_options else chosen
        providers = [first] if chosen == "CPUExecutionProvider" else [first, "CPUExecutionProvider"]
        model.signature  # noqa: B018 - a damaged file is a ModelError before ORT sees it
        try:
            sess = ort.InferenceSession(str(model.path), so, providers=providers)
        except Exception as exc:  # onnxruntime's exception types are not importable uniformly
            raise UnsupportedModelError(
                f"{model.path}: ONNX Runtime refuses this model: {_explain(exc)}"
            ) from None
        return OrtSession(model, sess, chosen, threads, providers=providers, options=options)

    # --- what a deploy bundle needs (see Runtime) ---

    @classmethod
    def bundle_requirement(cls, providers: Sequence[str] = ()) -> dict[str, Any]:
        # The CUDA and TensorRT providers ship in onnxruntime-gpu, QNN in onnxruntime-qnn.
        gpu = any(p in ("CUDAExecutionProvider", "TensorrtExecutionProvider") for p in providers)
        pkg = "onnxruntime-gpu" if gpu else cls.package
        alts = ["onnxruntime-qnn"] if "QNNExecutionProvider" in providers else []
        req = cls.min_requirement(cls.package).replace(cls.package, pkg, 1)
        return {"package": pkg, "requirement": req, "alternatives": alts, "module": "onnxruntime"}

    @classmethod
    def host_placement(
        cls, device: str, providers: Sequence[str] = (), delegate: str | None = None
    ) -> tuple[str, str | None, str | None]:
        present = cls.devices()
        usable = [p for p in providers if p in present]
        wanted = providers[0] if providers else None
        note = None
        if wanted not in present:
            note = f"{wanted} is not available here; measured on {usable[0] if usable else 'CPU'}"
        provider = usable[0] if usable else "CPUExecutionProvider"
        return ("CPU" if provider == "CPUExecutionProvider" else device), provider, note
