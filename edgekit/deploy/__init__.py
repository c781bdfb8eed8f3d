"""Deploy: turn a model into a bundle that runs on a profile's hardware, or say which limit it breaks.

A bundle is a folder (and optionally a ``.tar.gz`` of it)::

    model.tflite | model.onnx | model.xml + model.bin
    manifest.json      schema_version, profile, format, precision, signature, preprocessing,
                       sha256 of every other file, runtime requirement, conversion path,
                       optimization summary, parity and latency measured here, versions
                       of the frameworks that made it
    run.py             a runner that needs only the target's runtime and numpy (runner.py)
    requirements.txt   the runtime and numpy, with versions
    README.md          how to run it on the target (and any compiler step)
    preprocess.json    when one sits next to the source model

The flow (`deploy`): check the limits that the source already decides (static
shapes), convert to the profile's format (`edgekit.convert`, verified), quantize
when the chosen precision is an integer one (through the `optimizer` hook,
`edgekit.optimize` by default), check the result against every limit, measure,
then build the folder with `edgekit.outputs.atomic_dir`. Nothing that looks like
a finished bundle is left behind by a failure.

The parts: `limits` (a model against a profile's limits), `auto` (``--profile
auto``), `host` (this machine as a stand-in for the target), `precision`,
`assemble` (the bundle's files), `readme`, `bundle` (reading, checking and
running a bundle; what `edgekit bench` imports) and `runner` (the bundle's run.py).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.deploy.auto import choose_auto_profile
from edgekit.deploy.bundle import (
    MANIFEST,
    MANIFEST_SCHEMA_VERSION,
    LoadedBundle,
    extract_bundle,
    load_bundle,
    run_bundle,
)
from edgekit.deploy.limits import check_limits, estimate_arena_bytes, with_input_shapes
from edgekit.deploy.precision import (
    INT_PRECISIONS,
    Optimizer,
    choose_precision,
    compute_precision,
)
from edgekit.errors import EdgekitError, InputError
from edgekit.model import Model

if TYPE_CHECKING:
    from edgekit.profiles import Profile

__all__ = [
    "MANIFEST_SCHEMA_VERSION",
    "Bundle",
    "LoadedBundle",
    "check_limits",
    "choose_auto_profile",
    "deploy",
    "estimate_arena_bytes",
    "extract_bundle",
    "load_bundle",
    "run_bundle",
]


@dataclass
class Bundle:
    """What `deploy` wrote: the folder, its manifest, the model inside, and an archive if asked."""

    path: Path
    manifest: dict[str, Any]
    model_path: Path
    archive: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def parity(self) -> dict[str, Any] | None:
        return self.manifest["measurements"].get("parity")


@dataclass
class _Made:
    """The model that would ship, and how it was made (for the manifest)."""

    model: Model
    conversion: dict[str, Any]
    optimization: dict[str, Any]
    parity: dict[str, Any] | None = None
    # runtime options the bundle's runtime must be compiled with (a bf16 inference precision)
    options: dict[str, Any] | None = None


def _source_shapes(
    src: Model, prof: Profile, given: Mapping[str, tuple[int, ...]] | None, warnings: list[str]
) -> dict[str, tuple[int, ...]]:
    """The input shapes to convert with; on a static-shape target, a dynamic batch becomes 1,
    and a dimension that is still dynamic is a LimitError before anything is written."""
    shapes = dict(given or {})
    if not prof.limits.static_shapes:
        return shapes
    for t in src.signature.inputs:
        if t.name in shapes or t.shape is None:
            continue
        dyn = [i for i, d in enumerate(t.shape) if not isinstance(d, int)]
        if dyn == [0]:
            shapes[t.name] = (1, *t.shape[1:])  # type: ignore[arg-type]
            warnings.append(f"input '{t.name}': dynamic batch fixed to 1 ({prof.name} needs "
                            "static shapes)")  # fmt: skip
    check_limits(with_input_shapes(src, shapes), prof, stage="source")
    return shapes


# Generated parity inputs: as many as `compare_outputs` makes by default; calibration data
# gives up to PARITY_SAMPLES of its samples.
_GENERATED = {"source": "generated", "count": 4, "seed": 0}
PARITY_SAMPLES = 32


def parity_inputs(
    src: Model, calib_data: Any, feed: Any
) -> tuple[list[dict[str, Any]] | None, dict[str, Any]]:
    """The inputs an int8 result is checked on, and their record for the manifest: samples
    of the calibration data, fed as the optimize pass fed it (`plan_feed`), when it is
    given; else None (generated inputs)."""
    if calib_data is None or len(src.signature.inputs) != 1:
        return None, dict(_GENERATED)
    from edgekit.optimize.data import resolve_data

    data = resolve_data(src, calib_data, None, PARITY_SAMPLES, [], seed=1, feed=feed)
    name = src.signature.inputs[0].name
    feeds = [{name: data.calib[i : i + 1]} for i in range(len(data.calib))]
    return feeds, {"source": "calibration data", "data": str(calib_data),
                   "count": len(feeds), "feed": (data.feed or {}).get("source")}  # fmt: skip


def _verify(
    src: Model, dst: Model, precision: str, tolerance: float | None,
    shapes: Mapping[str, tuple[int, ...]], feeds: list[dict[str, Any]] | None = None,
    inputs: dict[str, Any] | None = None, options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    from edgekit.errors import VerificationError
    from edgekit.verify import compare_outputs

    parity = compare_outputs(src, dst, feeds, precision=precision, tolerance=tolerance,
                             input_shapes=shapes or None, dst_options=options)  # fmt: skip
    if not parity.passed:
        on = "" if feeds is None else " on the calibration data"
        raise VerificationError(
            f"{src.path}: the {precision} model does not reproduce the source{on}: "
            f"{parity.reason}; pass --tolerance to accept it or --no-verify to skip the check"
        )
    return parity.to_dict() | {"inputs": inputs or dict(_GENERATED)}


def _make_model(
    src: Model, prof: Profile, chosen: str, why: str, prequantized: bool, work: Path, *,
    optimizer: Optimizer | None, verify: bool, tolerance: float | None,
    shapes: dict[str, tuple[int, ...]], trust_model: bool, warnings: list[str],
    say: Callable[[str], None], calib_data: Any = None, feed: Any = None,
) -> _Made:  # fmt: skip
    """The model in the profile's format at `chosen`: the source itself, a conversion
    (verified against the source), or the optimizer's quantized model."""
    from edgekit.deploy.assemble import same_format_copy, writes_fp16
    from edgekit.deploy.precision import compute_precision, default_optimizer
    from edgekit.errors import BundleError

    made = _Made(src, {"path": [str(src.format)], "tools": [], "attempts": []},
                 {"precision": chosen, "reason": why, "passes": []})  # fmt: skip
    computed = compute_precision(prof, chosen)  # the fp32 model, computed in bf16 by the runtime
    float_precision = "fp32" if chosen in INT_PRECISIONS or computed else chosen
    if chosen in INT_PRECISIONS and prequantized:
        made.model, notes = same_format_copy(src, "fp32", work)
        warnings += notes
    elif chosen in INT_PRECISIONS:
        qdir = work / "optimized"
        qdir.mkdir()
        made.model = (optimizer or default_optimizer)(src, prof, chosen, qdir)
        from edgekit.convert.layout import input_layouts

        # onnx2tf's SavedModel (an ONNX source, or PyTorch when PT2E failed) takes NHWC
        made.conversion.update(path=[str(src.format), str(made.model.format)], tools=["optimize"],
                               input_layouts=input_layouts(src, made.model))  # fmt: skip
        made.optimization["passes"].append({"name": "quantize", "precision": chosen})
        report = made.model.__dict__.get("optimize_report")
        made.optimization["optimize"] = report
        warnings += (report or {}).get("warnings", [])
        if str(made.model.format) != prof.format:
            raise BundleError(
                f"the optimize pass made a {made.model.format} model; {prof.name} needs {prof.format}"
            )
        if verify:
            feeds, inputs = parity_inputs(src, calib_data, feed)
            made.parity = _verify(src, made.model, "int8", tolerance, shapes, feeds, inputs)
    elif str(src.format) == prof.format:
        made.model, notes = same_format_copy(src, float_precision, work)
        warnings += notes
        if verify and float_precision == "fp16" and writes_fp16(prof.format):
            made.parity = _verify(src, made.model, "fp16", tolerance, shapes)
    else:
        from edgekit.convert import convert

        res = convert(src, prof.format, work / "converted", input_shapes=shapes or None,
                      verify=verify, tolerance=tolerance, precision=float_precision,
                      trust_model=trust_model)  # fmt: skip
        made.model = res.model
        if res.parity is not None:
            made.parity = res.parity.to_dict() | {"inputs": dict(_GENERATED)}
        warnings += res.warnings
        made.conversion = {"path": res.path, "tools": res.tools,
                           "attempts": [a.to_dict() for a in res.attempts],
                           "input_layouts": res.layouts}  # fmt: skip
        say(f"converted via {res.path_str}")
    if chosen == "fp16" and not computed:
        made.optimization["passes"].append({"name": "fp16 weights", "precision": "fp16"})
    if computed:
        from edgekit.runtimes import get_runtime

        made.options = get_runtime(prof.runtime).precision_options(computed)
        made.optimization["passes"].append({"name": "inference precision", "precision": chosen,
                                            "runtime_options": made.options})  # fmt: skip
        if verify:  # the runtime computing in `chosen`, against the source, at its tolerance
            made.parity = _verify(src, made.model, chosen, tolerance, shapes, options=made.options)
    return made


def _measurements(
    made: _Made, prof: Profile, threads: int | None, measure: bool,
    shapes: dict[str, tuple[int, ...]], work: Path, warnings: list[str],
) -> tuple[dict[str, Any], str]:  # fmt: skip
    """Parity and latency measured on this machine, and where that is; plus the host runtime."""
    from edgekit.deploy.host import host_placement, machine_arch, measure_latency

    runtime, device, provider, device_note = host_placement(prof)
    if device_note:
        warnings.append(device_note)
    arch = machine_arch()
    on_target = arch == prof.arch and device_note is None
    measurements: dict[str, Any] = {
        "parity": made.parity,
        "accuracy": None,
        "latency": None,
        "measured_on": "target" if on_target else "host",
        "machine": {"arch": arch, "system": platform.system(),
                    "python": platform.python_version()},
    }  # fmt: skip
    if not on_target:
        measurements["note"] = (f"host measurement on {arch}/{device}, not on "
                                f"{prof.arch}/{prof.device_label}")  # fmt: skip
    if measure:
        try:
            measurements["latency"] = measure_latency(made.model, runtime, device, provider,
                                                      threads, shapes or None, made.options)  # fmt: skip
        except EdgekitError as exc:
            warnings.append(f"latency not measured: {str(exc).replace(str(work) + '/', '')}")
    return measurements, runtime


def deploy(
    model: Model | str | os.PathLike,
    profile: Profile | str,
    out: str | os.PathLike,
    *,
    archive: bool = False,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    verify: bool = True,
    tolerance: float | None = None,
    precision: str | None = None,
    optimizer: Optimizer | None = None,
    measure: bool = True,
    threads: int | None = None,
    trust_model: bool = False,
    log: Callable[[str], None] | None = None,
    calib_data: Any = None,
    eval_data: Any = None,
    feed: Any = None,
    accept_low_baseline: bool = False,
) -> Bundle:
    """Convert (and quantize) `model` for `profile` and write a verified bundle at `out`.

    `profile` is a name, a ``.toml`` path, a Profile, or ``"auto"`` (the fastest
    profile this machine runs, measured). `precision` overrides the profile's
    choice (it must be one the profile allows); int8 precisions go through
    `optimizer(model, profile, precision, work_dir) -> Model`, which defaults to
    `edgekit.optimize.optimize`. `input_shapes` fixes dynamic dimensions (a static-
    shape profile gets batch 1 for a dynamic batch dimension when none is given).
    `archive` also writes ``<out>.tar.gz``. `calib_data`, `eval_data`, `feed` and
    `accept_low_baseline` go to the default optimizer (`edgekit.optimize.optimize`): the
    data fed as `edgekit.data.feed.plan_feed` decides, recorded in the manifest's
    ``optimization``. Raises LimitError before anything is
    written when the model breaks one of the profile's limits.
    """
    from edgekit.model import load
    from edgekit.profiles import Profile, load_profile
    from edgekit.verify import model_precision

    say = log or (lambda _msg: None)
    if optimizer is None and (calib_data is not None or feed is not None):
        import functools

        from edgekit.deploy.precision import default_optimizer

        optimizer = functools.partial(default_optimizer, calib_data=calib_data,
                                      eval_data=eval_data, feed=feed,
                                      accept_low_baseline=accept_low_baseline)  # fmt: skip
    src = model if isinstance(model, Model) else load(model, trust_model=trust_model)
    auto_info = None
    if isinstance(profile, str) and profile == "auto":
        prof, auto_info = choose_auto_profile(src, input_shapes=input_shapes, log=say)
        threads = threads if threads is not None else auto_info["threads"]
    else:
        prof = profile if isinstance(profile, Profile) else load_profile(profile)
    out = Path(out)
    if out.suffix in (".gz", ".tgz"):
        raise InputError(
            f"--out {out} names an archive; give a folder (add --archive for a .tar.gz)"
        )
    warnings: list[str] = []
    shapes = _source_shapes(src, prof, input_shapes, warnings)
    # A source already quantized in the profile's format ships as it is.
    prequantized = str(src.format) == prof.format and model_precision(src) == "int8"
    chosen, why = choose_precision(prof, precision)
    # Weights alone too large at the shipped precision: said before any conversion runs
    # (a compute precision such as bf16 ships fp32 weights).
    stored = "fp32" if compute_precision(prof, chosen) else chosen
    check_limits(with_input_shapes(src, shapes), prof, stage="source", precision=stored)
    if prequantized and chosen in INT_PRECISIONS:
        why = "the source is already quantized"
    say(f"profile {prof.name}: {prof.format} on {prof.runtime}/{prof.device_label}, "
        f"precision {chosen}")  # fmt: skip

    from edgekit.deploy.assemble import check_out_folder
    from edgekit.outputs import atomic_dir, output_lock

    out.parent.mkdir(parents=True, exist_ok=True)
    archive_path = out.parent / f"{out.name}.tar.gz" if archive else None
    # A second deploy to the same folder fails at once instead of interleaving with this one.
    with output_lock(out):
        check_out_folder(out)
        with (
            atomic_dir(out) as stage,
            tempfile.TemporaryDirectory(prefix=f".{out.name}.edgekit-work-", dir=out.parent) as w,
        ):
            work = Path(w)
            made = _make_model(src, prof, chosen, why, prequantized, work, optimizer=optimizer,
                               verify=verify, tolerance=tolerance, shapes=shapes,
                               trust_model=trust_model, warnings=warnings, say=say,
                               calib_data=calib_data, feed=feed)  # fmt: skip
            limits_checked = check_limits(made.model, prof, stage="result")
            run_threads = threads if threads is not None else prof.threads
            measurements, host_rt = _measurements(made, prof, run_threads, measure, shapes, work,
                                                  warnings)  # fmt: skip
            manifest = _assemble(stage, src, made, prof, chosen, host_rt, run_threads,
                                 {"limits_checked": limits_checked, "measurements": measurements,
                                  "auto_profile": auto_info}, warnings)  # fmt: skip
            if archive_path is not None:
                from edgekit.deploy.assemble import archive_bundle

                archive_bundle(stage, out.name, archive_path)
    say(f"wrote {out}" + (f" and {archive_path}" if archive_path else ""))
    return Bundle(out, manifest, out / manifest["model"]["entry"], archive_path, warnings)


def _assemble(
    stage: Path, src: Model, made: _Made, prof: Profile, chosen: str, host_rt: str,
    threads: int | None, measured: dict[str, Any], warnings: list[str],
) -> dict[str, Any]:  # fmt: skip
    """Write the bundle's files into `stage`, the manifest last; return the manifest."""
    from edgekit import __version__
    from edgekit.bench.machine import package_versions
    from edgekit.deploy.assemble import copy_model, hash_files, run_compiler, write_runner
    from edgekit.deploy.readme import bundle_readme
    from edgekit.model import load
    from edgekit.runtimes import get_runtime

    files = copy_model(made.model, stage)
    entry = files[0]
    preprocess = None
    pre_file = src.path.parent / "preprocess.json"
    if pre_file.is_file():
        shutil.copyfile(pre_file, stage / "preprocess.json")
        preprocess = json.loads(pre_file.read_text())
    compiler = run_compiler(prof, stage, entry, warnings) if prof.compiler is not None else None
    req = get_runtime(host_rt).bundle_requirement(prof.providers)
    (stage / "requirements.txt").write_text(f"{req['requirement']}\nnumpy>=1.26\n")
    write_runner(stage)
    (stage / "README.md").write_text(
        bundle_readme(prof, entry, req, chosen, compiler), encoding="utf-8"
    )
    shipped = load(stage / entry)
    manifest = {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "created_by": "edgekit",
        "edgekit_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": package_versions(),  # the frameworks that made these files
        "profile": prof.to_dict(),
        "format": prof.format,
        "precision": chosen,
        "model": {
            "entry": entry,
            "files": files,
            "size_bytes": shipped.size_bytes,
            "source": {"name": src.path.name, "format": str(src.format), "sha256": src.sha256},
        },
        "signature": shipped.signature.to_dict(),
        "preprocessing": preprocess,
        "runtime": {
            "name": prof.runtime,
            "host_runtime": host_rt,
            "device": prof.device,
            "provider": prof.provider,
            "providers": list(prof.providers),
            "delegate": prof.delegate,
            "threads": threads,
            # the runtime must be compiled with these (run.py applies them): e.g. OpenVINO's
            # INFERENCE_PRECISION_HINT=bf16 for a bf16 bundle of an fp32 model
            "inference_precision": compute_precision(prof, chosen),
            "options": made.options,
            "requirement": req["requirement"],
            "package": req["package"],
            "module": req["module"],
            "alternatives": req["alternatives"],
        },
        "conversion": made.conversion,
        "optimization": made.optimization,
        **measured,
        "compiler": compiler,
        "warnings": warnings,
        "files": hash_files(stage),
    }
    from edgekit.reports import write_page

    # The page reads no "files", so it is written first and listed with the rest.
    write_page(json.loads(json.dumps(manifest, default=str)), stage)
    manifest["files"] = hash_files(stage)
    (stage / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return manifest
