"""This machine as a stand-in for the target: where a profile's model runs here, and its latency.

Which device or provider to use is the runtime's knowledge (`Runtime.host_placement`);
this module only asks it, and times through `edgekit.bench.benchmark`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from edgekit.vocab import normalize_arch

if TYPE_CHECKING:
    from edgekit.model import Model
    from edgekit.profiles import Profile

__all__ = ["host_placement", "machine_arch", "measure_latency"]


def machine_arch() -> str:
    """This machine's CPU architecture, named as profiles name it."""
    return normalize_arch()


def host_placement(profile: Profile) -> tuple[str, str, str | None, str | None]:
    """(runtime, device, provider, note) to run `profile`'s model on this machine; `note` says
    why that differs from the target, and is None when this host runs it as the target would."""
    from edgekit.deploy.bundle import host_runtime
    from edgekit.runtimes import get_runtime

    rt = host_runtime(profile.runtime)
    device, provider, note = get_runtime(rt).host_placement(
        profile.device, profile.providers, profile.delegate
    )
    return rt, device, provider, note


def measure_latency(
    model: Model,
    runtime: str,
    device: str,
    provider: str | None,
    threads: int | None,
    input_shapes: Mapping[str, tuple[int, ...]] | None,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A short latency measurement here with `edgekit.bench.benchmark` (Ctrl-C ends it early),
    the runtime opened with `options` (an inference precision), and what it computed in."""
    from edgekit.bench import benchmark

    rep = benchmark(model, runtime=runtime, device=device, provider=provider, threads=threads,
                    input_shapes=input_shapes, min_runs=10, min_time=0.2, max_time=2.0,
                    stop_on_interrupt=True, options=dict(options) if options else None)  # fmt: skip
    return {"tool": "edgekit.bench.benchmark", "latency_ms": dict(rep.latency_ms),
            "inference_precision": rep["runtime"]["inference_precision"]}  # fmt: skip
