"""ExecuTorch: `.pte` programs run by PyTorch's on-device runtime, on this host's CPU.

The pip wheel's runtime is the same C++ an Android or Raspberry Pi app links, with the
XNNPACK backend compiled in, so a program whose subgraphs were lowered to XNNPACK runs
its delegate here as on an Arm CPU (with x86 kernels: latency measured here is this
host's). `threads` sets the size of ExecuTorch's shared threadpool, which is
process-wide, as XNNPACK's threads are in an app.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from edgekit.errors import UnsupportedModelError
from edgekit.model import Model
from edgekit.runtimes.base import Runtime, Session, check_feeds, first_line
from edgekit.vocab import RUNTIME_FORMATS

__all__ = ["ExecuTorch", "ExecuTorchSession"]


def _threadpool() -> Any:
    """ExecuTorch's pybindings, whose threadpool functions set XNNPACK's thread count."""
    from executorch.extension.pybindings import portable_lib

    return portable_lib


class ExecuTorchSession(Session):
    runtime = "executorch"
    device = "CPU"
    timed_region = "input copy to torch tensors + method.execute + output copy to numpy"
    concurrency_note = "one loaded method per thread"

    def __init__(self, model: Model, program: Any, method: Any, threads: int | None) -> None:
        super().__init__(model, model.signature)
        self.program = program  # the method's program must outlive it
        self.method = method
        self.threads = threads
        self._names_out = [t.name for t in self.signature.outputs]

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self._names_out, self.bind_checked(feeds)(), strict=True))

    def bind(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], Any]:
        return self.bind_checked(check_feeds(self.signature, feeds, self.model))

    def bind_checked(self, feeds: dict[str, np.ndarray]) -> Callable[[], list[np.ndarray]]:
        import torch

        args = [
            torch.from_numpy(np.ascontiguousarray(feeds[t.name])) for t in self.signature.inputs
        ]
        execute, path = self.method.execute, self.model.path

        def call() -> list[np.ndarray]:
            try:
                outs = execute(args)
            except RuntimeError as exc:
                raise UnsupportedModelError(
                    f"{path}: ExecuTorch failed to run the program: {first_line(exc)}"
                ) from None
            return [o.numpy() for o in outs]

        return call

    def close(self) -> None:
        self.method = self.program = None


class ExecuTorch(Runtime):
    """ExecuTorch's Python runtime (package `executorch`), XNNPACK backend on the CPU."""

    name = "executorch"
    formats = RUNTIME_FORMATS[name]
    package = "executorch"
    module = "executorch"
    extra = "executorch"
    thread_safe: ClassVar[bool] = False

    @classmethod
    def import_framework(cls) -> None:
        cls.require()
        import executorch.runtime  # noqa: F401

    @classmethod
    def report_options(
        cls, device: str, threads: int | None, options: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        return {**dict(options or {}), "backend": "XNNPACK (delegated subgraphs)",
                "threadpool": _threadpool()._threadpool_get_thread_count()}  # fmt: skip

    @classmethod
    def open(
        cls,
        model: Model,
        *,
        device: str | None = None,
        threads: int | None = None,
        provider: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> ExecuTorchSession:
        cls.check_format(model)
        cls.require()
        if device not in (None, "CPU", "cpu"):
            raise UnsupportedModelError(
                f"the executorch runtime here runs on the CPU (asked for device {device!r})"
            )
        from edgekit.formats.executorch import load_method, quiet_stderr

        if threads:
            with quiet_stderr():  # it logs each reset to stderr
                _threadpool()._unsafe_reset_threadpool(int(threads))
        program, method = load_method(model.path)
        return ExecuTorchSession(model, program, method, threads)

    # --- what a deploy bundle needs (see Runtime) ---

    @classmethod
    def bundle_requirement(cls, providers: Sequence[str] = ()) -> dict[str, Any]:
        # The runner imports executorch.runtime; executorch pins its own torch.
        return {"package": cls.package, "requirement": cls.min_requirement(cls.package),
                "alternatives": [], "module": "executorch.runtime"}  # fmt: skip
