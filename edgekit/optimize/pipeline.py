"""`optimize()`: prune, convert, quantize each allowed precision, prove and measure each
candidate against the fp32 baseline, keep the best, and write it with its report.

The phases are `edgekit.optimize.flow`'s; this module checks what the run asks for
against the conversion graph (`edgekit.convert.graph.EDGES`) and the pass table
(`edgekit.optimize.passes.PASSES`), reads the data, and puts the output in place.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import edgekit.optimize._tools as T
from edgekit.errors import InputError, UnsupportedModelError
from edgekit.optimize.passes import (
    COMPUTE_ONLY,
    QUANTIZE_CHOICES,
    fine_tunes,
    in_memory,
    quantizer_for,
)
from edgekit.outputs import atomic_dir, output_lock


@dataclass
class OptimizeResult:
    """What `optimize` wrote: the model, report.json / report.md, and the report itself."""

    model_path: Path
    report_path: Path
    markdown_path: Path
    report: dict[str, Any]
    met_budget: bool
    warnings: list[str]


def optimize(
    model: str | os.PathLike,
    profile: Any,
    *,
    out: str | os.PathLike,
    prune: float | None = None,
    structured: bool = False,
    quantize: str | None = None,
    calib_data: Any = None,
    eval_data: Any = None,
    max_accuracy_drop: float = 1.0,
    threads: int | None = None,
    finetune_epochs: int | None = None,
    calib_samples: int = 200,
    max_float_layers: int = 6,
    graph_opt: bool = True,
    measure: bool = True,
    seed: int = 0,
    progress: Any = None,
    feed: Any = None,
    accept_low_baseline: bool = False,
) -> OptimizeResult:
    """Make `model` smaller and faster for `profile`, prove what it cost, write it to `out`.

    Steps: optional pruning (Keras: magnitude or structured with fine-tuning; ONNX and
    TFLite: weight magnitude pruning, compressed size only); conversion to the
    profile's format; each precision the profile allows (``quantize="auto"``) or the
    one asked for; parity and accuracy of every candidate against the fp32 baseline;
    for int8 beyond ``max_accuracy_drop`` (points), the worst layers kept in float one
    at a time; latency of the baseline and every candidate measured interleaved by
    `edgekit.bench.benchmark` (short runs, round-robin) on the profile's runtime. The fastest
    candidate within the budget (the profile's earlier precision on a tie within 3%) is
    written to `out` with report.json and report.md; when
    none meets it, the one with the smallest drop is written and the report says so.
    `out` is built beside itself and put in place only when the run succeeds; a folder
    edgekit did not write is never replaced, and a second run on the same `out` fails
    at once with OutputLockedError.

    Latency is measured on `threads`; by default on the profile's thread count when
    this machine is the profile's kind, and on 1 thread (quiet and comparable on a
    shared machine) when the profile names none or targets another machine, whose
    numbers the report labels host measurements. Calibration data defaults
    to the dataset of the `edgekit train` run the model came from; without any, random
    inputs are used and the report says accuracy is unproven.

    `feed` (`edgekit.data.feed.FeedFlags`) says how the data feeds the model, for
    calibration and evaluation alike (`edgekit.data.feed.plan_feed`). A baseline at
    chance (`edgekit.data.feed.near_chance`) is warned about loudly and never meets the
    budget unless `accept_low_baseline`.
    """
    import edgekit.optimize.report as R
    from edgekit.model import load
    from edgekit.optimize.data import resolve_data
    from edgekit.optimize.flow import Run, run_flow
    from edgekit.profiles import load_profile

    say = progress or (lambda msg: None)
    started = time.time()
    prof = load_profile(profile) if isinstance(profile, str | os.PathLike) else profile
    src = load(model)
    src_fmt = str(src.format)
    fmt = prof.format
    runtime = T.runtime_for(fmt, prof.runtime)
    warnings: list[str] = []
    out = Path(out)
    if prune is not None and not 0.0 < float(prune) < 1.0:
        raise InputError(f"--prune must be a fraction between 0 and 1, got {prune}.")
    if max_accuracy_drop < 0:
        raise InputError(f"--max-accuracy-drop must be at least 0, got {max_accuracy_drop}.")
    first = first_conversion(src_fmt, fmt, bool(prune))
    can_quantize = quantizable(first or src_fmt, fmt)
    check_route(src, prof, quantize, can_quantize)
    inference = inference_for(quantize, prof, fmt)
    if can_quantize and quantize not in COMPUTE_ONLY:
        precisions = precisions_for(quantize, prof, fmt)
    else:
        precisions = ["fp32"]
        if quantize is None and prof.precision != ("fp32",):
            warnings.append(
                f"{_cannot_quantize(src, fmt)}: the profile's {', '.join(prof.precision)} "
                f"were not tried; give {_sources(fmt)} source"
            )

    data = resolve_data(src, calib_data, eval_data, calib_samples, warnings, seed,
                        fine_tune=bool(prune) and fine_tunes(src_fmt), feed=feed)  # fmt: skip
    n_threads, threads_from = threads_for(threads, prof)
    # The lock makes a second run on `out` fail at once; atomic_dir builds the output
    # beside it and puts it in place only when everything succeeded, and refuses to
    # replace a folder edgekit did not write.
    with output_lock(out), atomic_dir(out) as tmp:
        work = tmp / ".work"
        proc = src
        if first is not None:
            from edgekit.convert import convert

            say(f"converting {src_fmt} to {first} (edgekit.convert)")
            conv = convert(src, first, work / "converted" / T.MODEL_FILE.get(first, "saved_model"))
            proc = conv.model
            if conv.layouts:  # onnx2tf's SavedModel takes NHWC: so must its data
                from edgekit.convert.layout import data_to_nhwc

                data = data_to_nhwc(data)
            warnings.append(f"the {src_fmt} source was converted first: {conv.path_str}")
        run = run_flow(Run(
            proc, prof, runtime, precisions, data, work, warnings, can_quantize=can_quantize,
            prune=prune, structured=structured, auto=quantize in (None, "auto"), inference=inference,
            max_drop=max_accuracy_drop, threads=n_threads, epochs=finetune_epochs,
            max_float_layers=max_float_layers, graph_opt=graph_opt, measure=measure, say=say,
        ))  # fmt: skip
        _check_baseline(run, data, accept_low_baseline)
        copy_model(run.chosen.path, tmp / T.MODEL_FILE[fmt])
        rep = R.build_report(run, source=src, threads_from=threads_from,
                             elapsed_s=round(time.time() - started, 1))  # fmt: skip
        R.write(rep, tmp)
        shutil.rmtree(work, ignore_errors=True)
    return OptimizeResult(
        model_path=out / T.MODEL_FILE[fmt],
        report_path=out / "report.json",
        markdown_path=out / "report.md",
        report=rep,
        met_budget=bool(rep["meets_budget"]),
        warnings=list(rep["warnings"]),
    )


def _check_baseline(run: Any, data: Any, accept: bool) -> None:
    """A baseline at chance is said loudly, and its budget is not met unless accepted."""
    from edgekit.data.feed import chance_warning, near_chance

    acc = run.base.accuracy if run.base is not None else None
    if not data.labelled or not near_chance(acc, data.num_classes):
        return
    run.warnings.insert(0, chance_warning(acc, data.num_classes))
    if not accept:
        run.met = False
        run.warnings.insert(1, "the accuracy budget is NOT called met against a baseline at "
                            "chance; pass --accept-low-baseline if this baseline is right")  # fmt: skip


# --- what the run can do, from the conversion graph and the pass table -------------------


def _reaches(src_fmt: str, dst: str) -> bool:
    from edgekit.convert.graph import find_paths

    return src_fmt == dst or bool(find_paths(src_fmt, dst))


def first_conversion(src_fmt: str, fmt: str, prune: bool = False) -> str | None:
    """The format a source is converted to before the flow, or None: a source the
    profile's quantizer does not take, that no fine-tuning pass works on (in memory, or
    on its file when pruning), is converted first to the first format the quantizer
    takes (its preferred input) that it can reach: SavedModel or TFLite to ONNX, for ONNX
    Runtime and OpenVINO."""
    q = quantizer_for(fmt)
    if q is None or src_fmt == fmt or src_fmt in q.accepts:
        return None
    if in_memory(src_fmt) or (prune and fine_tunes(src_fmt)):
        return None
    return next((f for f in q.accepts if _reaches(src_fmt, f)), None)


def quantizable(src_fmt: str, fmt: str) -> bool:
    """Whether the profile's quantizer can take this source: it takes the profile's format
    (it quantizes the fp32 baseline) or the source's (it converts while it quantizes)."""
    q = quantizer_for(fmt)
    return q is not None and (fmt in q.accepts or src_fmt in q.accepts)


def _sources(fmt: str) -> str:
    """ "the Keras or SavedModel" (the formats `fmt`'s quantizer starts from)."""
    q = quantizer_for(fmt)
    names = {
        "keras": "Keras",
        "savedmodel": "SavedModel",
        "onnx": "ONNX",
        "openvino": "OpenVINO",
        "torch": "PyTorch",
    }
    takes = [names.get(f, f) for f in (q.accepts if q else ())]
    return f"its {' or '.join(takes)}"


def _cannot_quantize(src: Any, fmt: str) -> str:
    src_fmt = str(src.format)
    if src_fmt == fmt:
        return f"{src.path.name} is already a .{fmt} file, which cannot be re-quantized"
    return f"{src.path.name} is {src_fmt}, which edgekit cannot quantize to a {fmt} model"


def check_route(src: Any, prof: Any, quantize: str | None, can_quantize: bool) -> None:
    """User errors for what the conversion graph and the pass table cannot do."""
    from edgekit.convert.graph import EDGES

    src_fmt, fmt = str(src.format), prof.format
    if not _reaches(src_fmt, fmt):
        sources = sorted({e.src for e in EDGES if _reaches(e.src, fmt)})
        raise UnsupportedModelError(
            f"profile {prof.name} needs a {fmt} model and edgekit cannot convert {src_fmt} "
            f"to {fmt}; give the {' or '.join(sources)} source."
        )
    if not can_quantize and quantize not in (None, "none", "fp32", *COMPUTE_ONLY):
        raise UnsupportedModelError(
            f"{_cannot_quantize(src, fmt)}; give {_sources(fmt)} source, or use --quantize none."
        )


def precisions_for(quantize: str | None, profile: Any, fmt: str) -> list[str]:
    """The precisions to try: the one asked for, or each the profile allows that the
    format's quantizer makes ("auto"); fp32 alone for "none"."""
    supported = _made(fmt)
    asked = quantize or ("auto" if len(profile.precision) > 1 else profile.precision[0])
    if asked not in QUANTIZE_CHOICES and asked not in supported:
        raise InputError(
            f"unknown --quantize {asked!r}; choose from {', '.join(QUANTIZE_CHOICES)}."
        )
    if asked == "none":
        return ["fp32"]
    refuse_unrunnable(asked, profile, supported)
    wanted = list(profile.precision) if asked == "auto" else [asked]
    missing = [p for p in wanted if p not in supported]
    if asked != "auto" and missing:
        raise UnsupportedModelError(
            f"profile {profile.name} runs {fmt} models, which edgekit cannot quantize to "
            f"{asked}; choose from {', '.join(p for p in supported if p != 'fp32')}."
        )
    return [p for p in wanted if p in supported] or ["fp32"]


def _made(fmt: str) -> tuple[str, ...]:
    """The precisions the quantizer of `fmt` models makes (fp32 alone without one)."""
    q = quantizer_for(fmt)
    return q.precisions if q is not None else ("fp32",)


def refuse_unrunnable(asked: str, profile: Any, supported: tuple[str, ...]) -> None:
    """A user error for a float precision (fp16, bf16) the profile's target cannot compute
    in, naming the profile and the precisions it can."""
    from edgekit.vocab import INFERENCE_PRECISION_NAMES

    compute = [INFERENCE_PRECISION_NAMES[ip] for ip in profile.inference_precision]
    if asked not in ("fp16", *COMPUTE_ONLY) or asked in (*profile.precision, *compute):
        return
    valid = [p for p in profile.precision if p in supported or p == "fp32"] + compute
    raise UnsupportedModelError(
        f"profile {profile.name} ({profile.runtime} on {profile.device_label}) cannot run "
        f"{asked}; choose --quantize from {', '.join([*valid, 'auto', 'none'])}."
    )


def inference_for(quantize: str | None, profile: Any, fmt: str) -> tuple[str, ...]:
    """The compute precisions (OpenVINO's spelling: bf16, f16) the fp32 model is compiled in
    as candidates: each the profile lists in auto mode, the one asked for (--quantize
    bf16), else none."""
    from edgekit.vocab import INFERENCE_PRECISION_NAMES

    if quantize in COMPUTE_ONLY:
        refuse_unrunnable(quantize, profile, _made(fmt))
        return tuple(ip for ip, n in INFERENCE_PRECISION_NAMES.items() if n == quantize)
    return tuple(profile.inference_precision) if quantize in (None, "auto") else ()


def threads_for(threads: int | None, prof: Any) -> tuple[int, str]:
    """Threads to measure latency on, and where that number comes from.

    `--threads` wins; else the profile's thread count when this machine is the profile's
    kind (same arch, runtime installed), at most this machine's cores; a profile for
    another machine is measured on 1 thread, since the host's cores say nothing about
    the target's; and 1 when the profile names none (quiet on a shared machine).
    """
    if threads is not None:
        if threads < 1:
            raise InputError(f"--threads must be at least 1, got {threads}.")
        return threads, "--threads"
    if not prof.runnable_here():
        return 1, "host measurement: 1 thread for a profile of another machine"
    if prof.threads:
        cores = os.cpu_count() or 1
        if prof.threads > cores:
            return cores, f"profile ({prof.threads}, capped to this machine's {cores} cores)"
        return prof.threads, "profile"
    return 1, "default (the profile names no thread count)"


def copy_model(src: Path, dest: Path) -> None:
    """Copy a model's files (an OpenVINO .xml with its .bin) to `dest`'s name."""
    from edgekit.model import load

    for f in load(src).files:
        shutil.copyfile(f, dest.with_suffix(f.suffix))
