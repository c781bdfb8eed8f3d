"""The Runtime and Session interfaces every inference backend implements.

A `Runtime` says which formats it runs, whether it is installed, and opens a
`Session`. A `Session` holds a loaded model: `run(feeds)` checks the feeds
against the signature and returns outputs by name; `bind(feeds)` returns a
zero-argument callable that runs one inference on pre-set inputs, which is what
the benchmark harness times. Everything else that differs between runtimes
(per-op profiles, concurrent requests, the options a report records) is a
method here too, so that code outside `edgekit.runtimes` never asks which
runtime it holds.
"""

from __future__ import annotations

import abc
import importlib
import importlib.util
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from edgekit.errors import InputError, MissingDependencyError, UnsupportedModelError
from edgekit.errors import first_line as first_line  # re-exported: it lived here before
from edgekit.model import Model, Signature, TensorSpec

if TYPE_CHECKING:
    from edgekit.runtimes.concurrent import Requests


class Session(abc.ABC):
    """A model loaded on a runtime and device, ready to run."""

    runtime: str
    device: str
    threads: int | None
    provider: str | None = None

    def __init__(self, model: Model, signature: Signature) -> None:
        self.model = model
        self.signature = signature

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Check `feeds` against the signature, run once, return outputs by name in order."""
        return self._run(check_feeds(self.signature, feeds, self.model))

    @abc.abstractmethod
    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one inference on checked feeds."""

    def bind(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], Any]:
        """Pre-set inputs and return a callable that runs one inference with them.

        Subclasses override this to keep per-call Python work minimal; what the
        callable does (input copy, output read) is stated by `timed_region`.
        """
        checked = check_feeds(self.signature, feeds, self.model)
        return lambda: self._run(checked)

    timed_region: ClassVar[str] = "input copy + inference + output read"
    # Whose time the timed region is, as a report states it next to its latencies.
    timing_source: ClassVar[str] = "this host's time"
    # Whether one session may run from several threads at once (throughput mode shares it).
    thread_safe: ClassVar[bool] = False
    # How throughput mode's threads hold the model, as the report states it.
    concurrency_note: ClassVar[str] = "one session per thread"

    def op_times(self, feeds: Mapping[str, np.ndarray], runs: int = 10) -> dict[str, Any]:
        """Where the time goes, per op type: {"unit": ..., "ops": {op: value}}.

        Runtimes that profile return "ms per inference" after `runs` inferences on
        `feeds`; this default, for a runtime whose Python API gives no per-op times,
        returns the model's op histogram with the unit "op count".
        """
        return {"unit": "op count", "ops": dict(self.model.op_histogram)}

    def node_times(self, feeds: Mapping[str, np.ndarray], runs: int = 10) -> dict[str, Any] | None:
        """Where the time goes, per executed node: {"unit": "ms per inference", "nodes":
        {name: {"op": the model's op type of that node (else the kernel's), "ms": ...}}},
        or None where the runtime's Python API gives no per-op times."""
        return None

    def target_figures(self) -> dict[str, Any] | None:
        """Figures of this loaded model that hold on the target device itself, not only on
        this host ({"source": who computed them, name: value, ...}), or None where the
        runtime has none: a desktop runtime's memory and times are this host's."""
        return None

    def inference_precision(self) -> dict[str, Any] | None:
        """The precision the runtime actually computes in, read back from the loaded model
        ({"ran": ..., ...}), or None where the runtime does not say (it runs the model's
        own precision)."""
        return None

    def concurrent(
        self,
        feeds: Sequence[Mapping[str, np.ndarray]],
        calls: Sequence[Callable[[], Any]],
        concurrency: int,
        open_more: Callable[[], Session],
    ) -> Requests:
        """`concurrency` requests in flight at once over `feeds`, for throughput mode.

        `calls` are this session's bound callables for `feeds`; `open_more` opens
        another session of the same model and settings. This default runs one Python
        thread per request, sharing this session when `thread_safe`, else giving each
        extra thread a session of its own from `open_more`.
        """
        from edgekit.runtimes.concurrent import ThreadRequests

        note, region = self.concurrency_note, self.timed_region
        if self.thread_safe:
            return ThreadRequests([list(calls) for _ in range(concurrency)], note, region, [])
        extra = [open_more() for _ in range(concurrency - 1)]
        groups = [list(calls)] + [[s.bind(f) for f in feeds] for s in extra]
        return ThreadRequests(groups, note, region, extra)

    def close(self) -> None:  # noqa: B027 - optional hook; most sessions free on GC
        """Release the runtime's resources."""

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Runtime(abc.ABC):
    """An inference runtime: which formats it runs, and how to open a session."""

    name: ClassVar[str]
    formats: ClassVar[tuple[str, ...]]
    package: ClassVar[str]  # the pip package that provides it
    extra: ClassVar[str]  # the edgekit extra that installs it: pip install 'edgekit[extra]'
    # A reference runs a model in its own framework for parity and accuracy checks; it is
    # not a deployment target, so profiles, inspect and bench do not offer it.
    reference_only: ClassVar[bool] = False
    # What `devices()` lists, as `edgekit devices` names it: "devices" or "providers".
    device_key: ClassVar[str] = "devices"
    # Loads an interleaved measurement spreads each model over, at least: a runtime whose
    # compiled models run at different speeds from one compilation to the next needs
    # several, or a ratio follows the compilations it happened to draw.
    min_loads: ClassVar[int] = 1

    module: ClassVar[str]  # the module that must import for the runtime to be available

    @classmethod
    def available(cls) -> bool:
        """True when the runtime's module can be imported here (found, not imported)."""
        return importlib.util.find_spec(cls.module) is not None

    @classmethod
    def version(cls) -> str | None:
        """The installed version, or None: the distribution's, else the module's own
        `__version__` (a build installed under another distribution name, such as
        onnxruntime-gpu)."""
        if not cls.available():
            return None
        try:
            return dist_version(cls.package)
        except PackageNotFoundError:
            return getattr(importlib.import_module(cls.module), "__version__", None)

    @classmethod
    def devices(cls) -> list[str]:
        """Devices (or execution providers) this runtime can use on this machine."""
        return ["CPU"]

    @classmethod
    def precision_notes(cls, isa_features: set[str]) -> list[str]:
        """Warnings for a report: where this runtime's default precision on a CPU with
        `isa_features` differs from what the model declares, and how edgekit measured."""
        return []

    @classmethod  # noqa: B027 - optional hook: most runtimes import in version()
    def import_framework(cls) -> None:
        """Import the framework now, so that a later `open` is charged for the model only."""

    @classmethod
    def throughput_options(
        cls, concurrency: int, threads: int | None, options: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """The `open` options for `concurrency` requests at once with `threads` each."""
        return dict(options or {})

    @classmethod
    def report_options(
        cls, device: str, threads: int | None, options: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """The settings a benchmark report records for a session opened with `options`."""
        return dict(options or {})

    @classmethod
    def precision_options(cls, precision: str) -> dict[str, Any]:
        """The options that make this runtime compute in `precision` (f32, bf16, f16); a
        user error where it has no such setting."""
        if precision == "f32":
            return {}
        raise InputError(
            f"{cls.name} has no inference precision setting; --inference-precision {precision} "
            "needs --runtime openvino"
        )

    @classmethod
    @abc.abstractmethod
    def open(
        cls,
        model: Model,
        *,
        device: str | None = None,
        threads: int | None = None,
        provider: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Session:
        """Load `model` and return a ready Session."""

    @classmethod
    def require(cls) -> None:
        """Raise a MissingDependencyError naming the extra to install when it is missing."""
        if not cls.available():
            raise MissingDependencyError(
                f"the {cls.name} runtime is not installed ({cls.package}); "
                f"run: pip install 'edgekit[{cls.extra}]'"
            )

    @classmethod
    def check_format(cls, model: Model) -> None:
        if str(model.format) not in cls.formats:
            raise UnsupportedModelError(
                f"{model.path}: the {cls.name} runtime cannot run {model.format} models "
                f"(it runs {', '.join(cls.formats)}); convert it first, e.g. "
                f"`edgekit convert {model.path.name} --to {cls.formats[0]}`"
            )

    # --- what a deploy bundle needs from its runtime (edgekit.deploy asks these) ---

    @classmethod
    def serves(cls, profile_runtime: str) -> bool:
        """True when this runtime runs, on a host, the models of a profile that names
        `profile_runtime` (a microcontroller runtime's models run on its desktop sibling)."""
        return profile_runtime == cls.name

    @classmethod
    def bundle_requirement(cls, providers: Sequence[str] = ()) -> dict[str, Any]:
        """What a bundle pins to run on the target, given the profile's execution providers.

        Keys: ``package`` (the pip distribution), ``requirement`` (its pip line, at
        least this host's major.minor), ``alternatives`` (other packages that work),
        ``module`` (what the bundle's run.py imports).
        """
        return {"package": cls.package, "requirement": cls.min_requirement(cls.package),
                "alternatives": [], "module": cls.package.replace("-", "_")}  # fmt: skip

    @classmethod
    def host_placement(
        cls, device: str, providers: Sequence[str] = (), delegate: str | None = None
    ) -> tuple[str, str | None, str | None]:
        """Where to run, on this host, a model meant for `device` (with the target's execution
        `providers` and LiteRT `delegate`): ``(device, provider, note)``, where `note` says
        why the host differs from the target, or is None when it runs it as the target would.

        The default runs on the CPU and says so when the target's device is another one.
        """
        note = None if device == "CPU" else f"{device} is not present here; measured on CPU"
        return "CPU", (providers[0] if providers else None), note

    @staticmethod
    def min_requirement(dist: str) -> str:
        """``dist>=MAJOR.MINOR`` of the installed distribution, or the bare name if absent."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            installed = version(dist)
        except PackageNotFoundError:
            return dist
        return f"{dist}>={'.'.join(installed.split('.')[:2])}"


def _shape_matches(spec: TensorSpec, shape: tuple[int, ...]) -> bool:
    if spec.shape is None:
        return True
    if len(spec.shape) != len(shape):
        return False
    return all(not isinstance(d, int) or d == s for d, s in zip(spec.shape, shape, strict=True))


def check_feeds(
    signature: Signature, feeds: Mapping[str, np.ndarray], model: Model | None = None
) -> dict[str, np.ndarray]:
    """Match feeds to the signature by name, shape and dtype; one sentence on a mismatch."""
    where = f"{model.path}: " if model is not None else ""
    expected = [t.name for t in signature.inputs]
    missing = [n for n in expected if n not in feeds]
    extra = [n for n in feeds if n not in expected]
    if missing or extra:
        raise InputError(
            f"{where}inputs do not match the model: expected {expected}, "
            f"missing {missing}, unexpected {extra}"
        )
    out = {}
    for spec in signature.inputs:
        arr = np.asarray(feeds[spec.name])
        if str(arr.dtype) != spec.dtype:
            raise InputError(
                f"{where}input '{spec.name}' has dtype {arr.dtype}, the model expects {spec.dtype}"
            )
        if not _shape_matches(spec, arr.shape):
            want = "?" if spec.shape is None else list(spec.shape)
            raise InputError(
                f"{where}input '{spec.name}' has shape {list(arr.shape)}, the model expects {want}"
            )
        out[spec.name] = arr
    return out
