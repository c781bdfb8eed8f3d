"""The benchmark harness: `benchmark()` checks the settings, reads a bundle, and measures.

The protocol is written down in benchmarks/PROTOCOL.md and implemented by the
modules beside this one: `protocol` (presets, --warmup, stop rules), `inputs`
(what is fed), `loops` (the latency timing loops), `throughput` (concurrent
requests) and `measure` (one measurement and its report). With `processes=K`,
`worker` repeats the measurement in K fresh processes and merges them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.bench.inputs import INPUT_MEMORY_LIMIT, INPUT_SAMPLES, load_npz
from edgekit.bench.loops import Progress, clock_overhead_ns, steady_state, warm_up
from edgekit.bench.measure import measure
from edgekit.bench.protocol import Protocol, parse_warmup, resolve_protocol
from edgekit.bench.report import Report
from edgekit.errors import InputError

if TYPE_CHECKING:
    from edgekit.data.feed import FeedFlags

# The harness's public names from before the split, still importable from here.
__all__ = [
    "INPUT_MEMORY_LIMIT",
    "INPUT_SAMPLES",
    "Progress",
    "Protocol",
    "benchmark",
    "clock_overhead_ns",
    "load_npz",
    "measure",
    "parse_warmup",
    "steady_state",
    "warm_up",
]


def _bundle(path: Path) -> dict[str, Any]:
    """Model path and runtime settings from a deploy bundle (checked by its checksums).

    A bundle runs on the profile's own runtime where it is here and the device would run
    the bundle's model file as it is (TFLite Micro for a cortex-m bundle: its arena is the
    device's), else on the runtime that stands in for it on this host; a target device
    absent here (an NPU, a GPU) is replaced as the runtime says, with a note.
    """
    from edgekit.deploy.bundle import load_bundle
    from edgekit.runtimes import RUNTIMES, get_runtime

    b = load_bundle(path)
    own = (b.manifest.get("runtime") or {}).get("name")
    compiler = b.manifest.get("compiler") or {}
    runtime = b.runtime
    if not compiler.get("ran") and own in RUNTIMES and get_runtime(own).available():
        runtime = own
    device, provider, note = b.device, b.provider, None
    if device != "CPU":
        device, provider, note = get_runtime(runtime).host_placement(
            device, b.providers or ([b.provider] if b.provider else []), b.delegate
        )
    return {
        "model": b.model_path,
        "runtime": runtime,
        "device": device,
        "provider": provider,
        "threads": b.threads,
        "note": note,
        "compiler": compiler,
        "profile": (b.manifest.get("profile") or {}).get("name"),
    }


def _with_bundle_facts(report: Report, b: dict[str, Any]) -> Report:
    """The bundle's stand-in note as a warning, and its compiler's figures, labelled as the
    compiler's estimates for the compiled model (what runs on the target's NPU)."""
    data = report.data
    if b["note"]:
        data["warnings"].append(b["note"])
        data["protocol"]["timing_source"] += f", standing in for {b['profile'] or 'the target'}"
    figures = b["compiler"].get("figures") if b["compiler"].get("ran") else None
    if figures:
        models = [o for o in b["compiler"].get("outputs") or [] if o.endswith(".tflite")]
        outputs = ", ".join(models) or "its output"
        data["compiler_figures"] = {
            "source": f"{b['compiler']['name']}'s estimates for {outputs} on "
            f"{b['profile'] or 'the profile'}'s target: the compiler's, not a measurement",
            **figures,
        }
    return report.validate()


def benchmark(
    model: Any,
    *,
    runtime: str | None = None,
    device: str | None = None,
    provider: str | None = None,
    threads: int | None = None,
    batch: int = 1,
    inputs: str | os.PathLike | Sequence[Mapping[str, np.ndarray]] | None = None,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    seed: int = 0,
    warmup: str | int | float | None = None,
    min_runs: int | None = None,
    min_time: float | None = None,
    max_time: float | None = None,
    max_runs: int | None = None,
    certify: bool = False,
    processes: int = 1,
    mode: str = "latency",
    concurrency: int | None = None,
    options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    stop_on_interrupt: bool = False,
    feed: FeedFlags | None = None,
) -> Report:
    """Measure `model` (a path, a Model, or a deploy bundle folder) and return a Report.

    Phases are timed separately (import, load, first inference, warm-up, steady
    state); steady state ends when min_runs AND min_time are both met, or at
    max_time. With processes=K the whole measurement is repeated in K fresh
    processes and their samples merged. mode="throughput" runs `concurrency`
    requests at once and reports inferences per second. A Ctrl-C in steady state
    ends the measurement and keeps its samples (stop reason "interrupted");
    `stop_on_interrupt=True` raises KeyboardInterrupt instead, for callers such as
    optimize and deploy, where the measurement is one step of a run the user means
    to stop. `feed` (preprocessing flags or a preprocess.json) says how a dataset npz
    in `inputs` feeds the model, through the same `plan_feed` as eval, optimize and
    deploy; the report's protocol records the feed that was applied ("feed").

    Example:
        report = benchmark("model.onnx", runtime="openvino", threads=1, min_time=1)
        print(report.latency_ms["median"])
    """
    from edgekit.model import Model, load
    from edgekit.runtimes import default_runtime, get_runtime

    if mode not in ("latency", "throughput"):
        raise InputError(f"--mode {mode!r} is not one of: latency, throughput")
    if batch < 1:
        raise InputError(f"--batch {batch} must be at least 1")
    if processes < 1:
        raise InputError(f"--processes {processes} must be at least 1")
    if concurrency is not None and concurrency < 1:
        raise InputError(f"--concurrency {concurrency} must be at least 1")
    if concurrency not in (None, 1) and mode == "latency":
        raise InputError("--concurrency applies to --mode throughput only")
    if mode == "throughput" and concurrency is None:
        concurrency = 2
    protocol = resolve_protocol(certify, warmup, min_runs, min_time, max_time, max_runs)

    bundle_path, b = None, {}
    if not isinstance(model, Model):
        p = Path(model)
        is_archive = p.is_file() and p.name.endswith((".tar.gz", ".tgz"))
        if is_archive or (p.is_dir() and (p / "manifest.json").is_file()):
            bundle_path = p
            b = _bundle(p)
            model = b["model"]
            runtime = runtime or b["runtime"]
            provider = provider or b["provider"]
            threads = threads if threads is not None else b["threads"]
            if device is not None:  # the user's own device: no stand-in note
                b["note"] = None
            device = device or b["device"]
    m = model if isinstance(model, Model) else load(model)
    if batch > 1 and not any(
        t.shape is None or (t.shape and not isinstance(t.shape[0], int)) for t in m.signature.inputs
    ):
        raise InputError(
            f"{m.path}: every input has a fixed first dimension, so --batch {batch} cannot apply; "
            "export the model with a dynamic batch dimension or give --input-shape"
        )
    rt_name = runtime or default_runtime(m)
    rt = get_runtime(rt_name)
    if rt.reference_only:
        raise InputError(
            f"the {rt_name} runtime is a reference for parity checks, not a target to "
            f"benchmark; convert {m.path.name} first (`edgekit convert --to tflite|onnx|openvino`)"
        )
    rt.require()

    if processes > 1:
        from edgekit.bench.worker import run_processes

        settings = {
            "model": str(m.path),
            "runtime": rt_name,
            "device": device,
            "provider": provider,
            "threads": threads,
            "batch": batch,
            "inputs": str(inputs) if isinstance(inputs, (str, os.PathLike)) else None,
            "input_shapes": {k: list(v) for k, v in (input_shapes or {}).items()},
            "seed": seed,
            "protocol": asdict(protocol),
            "mode": mode,
            "concurrency": concurrency,
            "options": dict(options or {}),
            # JSON for the workers: the file as a string, tuples as lists
            "feed": None if feed is None else json.loads(json.dumps(asdict(feed), default=str)),
        }
        if inputs is not None and settings["inputs"] is None:
            raise InputError("--processes needs inputs from a .npz file, not in-memory arrays")
        report = run_processes(settings, processes, progress)
        if bundle_path is not None:
            report.data["model"]["bundle"] = str(bundle_path)
    else:
        report = measure(
            m,
            rt_name,
            device=device,
            provider=provider,
            threads=threads,
            batch=batch,
            inputs=inputs,
            input_shapes=input_shapes,
            seed=seed,
            protocol=protocol,
            mode=mode,
            concurrency=concurrency or 1,
            options=options,
            progress=progress,
            bundle_path=bundle_path,
            feed=feed,
        )
    if bundle_path is not None:
        report = _with_bundle_facts(report, b)
    if stop_on_interrupt and report["protocol"]["stop_reason"] == "interrupted":
        raise KeyboardInterrupt
    return report
