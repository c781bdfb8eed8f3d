"""PyTorch: a `.pt2` ExportedProgram (its `.module()`) or a TorchScript module, run by torch.

It is the torch format's reference (what every conversion of a PyTorch model is
checked against, and what `eval` scores it with) and a target of its own for
`bench`: on the CPU, and on CUDA where torch sees a GPU. `threads` sets
`torch.set_num_threads`, which is process-wide in PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from edgekit.errors import InputError
from edgekit.model import Model
from edgekit.runtimes.base import Runtime, Session
from edgekit.runtimes.reference import output_names
from edgekit.vocab import RUNTIME_FORMATS


def _leaves(out: Any) -> list[Any]:
    """A model's outputs, flattened in order (tuples, lists and dicts of tensors alike)."""
    if isinstance(out, dict):
        return [x for v in out.values() for x in _leaves(v)]
    if isinstance(out, (list, tuple)):
        return [x for v in out for x in _leaves(v)]
    return [out]


class TorchSession(Session):
    runtime = "torch"
    timed_region = "input copy to torch + forward under inference_mode + output copy to numpy"

    def __init__(self, model: Model, module: Any, device: str, threads: int | None) -> None:
        super().__init__(model, model.signature)
        self.module = module
        self.device = device
        self.threads = threads
        self._torch_device = "cuda" if device == "CUDA" else "cpu"

    def _call(self, args: list[Any]) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode():
            outs = _leaves(self.module(*args))
        names = output_names(self, len(outs))
        return {n: o.detach().cpu().numpy() for n, o in zip(names, outs, strict=True)}

    def _tensors(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        import torch

        return [
            torch.from_numpy(np.ascontiguousarray(feeds[t.name])).to(self._torch_device)
            for t in self.signature.inputs
        ]

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._call(self._tensors(feeds))

    def bind(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], Any]:
        from edgekit.runtimes.base import check_feeds

        args = self._tensors(check_feeds(self.signature, feeds, self.model))
        return lambda: self._call(args)

    def close(self) -> None:
        self.module = None


class Torch(Runtime):
    name = "torch"
    formats = RUNTIME_FORMATS[name]
    package = "torch"
    module = "torch"
    extra = "torch"
    # A PyTorch module is not safe to call from several Python threads at once in general.
    thread_safe: ClassVar[bool] = False

    @classmethod
    def devices(cls) -> list[str]:
        import torch

        return ["CPU", "CUDA"] if torch.cuda.is_available() else ["CPU"]

    @classmethod
    def import_framework(cls) -> None:
        import torch  # noqa: F401

    @classmethod
    def report_options(
        cls, device: str, threads: int | None, options: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        return {**dict(options or {}), "device": device, "num_threads": threads}

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
        import torch

        from edgekit.formats.torch import load_torch

        dev = (device or "CPU").upper()
        if dev not in ("CPU", "CUDA"):
            raise InputError(f"the torch runtime runs on CPU or CUDA, not {device!r}")
        if dev == "CUDA" and not torch.cuda.is_available():
            raise InputError("the torch runtime was asked for CUDA, but torch sees no GPU here")
        if threads:
            torch.set_num_threads(int(threads))
        module = load_torch(model).module()
        if dev == "CUDA":
            module = module.to("cuda")
        return TorchSession(model, module, dev, threads)
