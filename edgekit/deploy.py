"""Deploy: turn a model into a bundle that runs on a profile's hardware, or say which limit it breaks.

A bundle is a folder (and optionally a ``.tar.gz`` of it)::

    model.tflite | model.onnx | model.xml + model.bin
    manifest.json      schema_version, profile, format, precision, signature, preprocessing,
                       sha256 of every other file, runtime requirement, conversion path,
                       optimization summary, parity and latency measured here, versions
                       of the frameworks that made it
    run.py             a runner that needs only the target's runtime and numpy
    requirements.txt   the runtime and numpy, with versions
    README.md          how to run it on the target (and any compiler step)
    preprocess.json    when one sits next to the source model

The flow: check the limits that the source already decides (static shapes),
convert to the profile's format (`edgekit.convert`, verified), quantize when the
chosen precision is int8 (through the `optimizer` hook, `edgekit.optimize` by
default), check the result against every limit, measure, then build the folder
in a temporary sibling and rename it into place. Nothing that looks like a
finished bundle is left behind by a failure.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import platform
import shutil
import stat
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.errors import (
    BundleError,
    EdgekitError,
    InputError,
    LimitError,
    UnsupportedModelError,
)
from edgekit.model import Model, sha256_file

if TYPE_CHECKING:
    from edgekit.profiles import Profile

__all__ = [
    "MANIFEST_SCHEMA_VERSION",
    "Bundle",
    "LoadedBundle",
    "check_limits",
    "deploy",
    "estimate_arena_bytes",
    "extract_bundle",
    "load_bundle",
    "run_bundle",
]

MANIFEST_SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
FLOAT_PRECISIONS = ("fp32", "fp16")
INT_PRECISIONS = ("int8", "int8-float-fallback", "dynamic", "int16x8")

# The runtime a profile names -> the one that runs its models on this host.
HOST_RUNTIME = {"litert": "litert", "tflite-micro": "litert", "onnxruntime": "onnxruntime",
                "openvino": "openvino"}  # fmt: skip

# An optimizer turns a converted (fp32) model into one of `precision` inside `work`.
Optimizer = Callable[[Model, "Profile", str, Path], Model]


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
class LoadedBundle:
    """A checked bundle: where its model is and how to run it (what `edgekit bench` reads)."""

    path: Path
    manifest: dict[str, Any]
    model_path: Path
    runtime: str
    device: str
    provider: str | None
    threads: int | None

    @property
    def model(self) -> Path:
        return self.model_path


# --- limits ---------------------------------------------------------------------------


def _fmt_bytes(n: int) -> str:
    from edgekit.profiles import format_bytes

    return format_bytes(int(n))


def _dtype_size(dtype: str) -> int:
    import numpy as np

    try:
        return int(np.dtype(dtype).itemsize)
    except TypeError:
        return 4


def _tflite_tensors(
    model: Model,
) -> tuple[list[dict[str, Any]], list[tuple[list[int], list[int], str]]]:
    """Tensors (bytes, constant?, dtype) and ops (inputs, outputs, name) of a TFLite main graph."""
    from edgekit.formats.tflite import _ITEMSIZE, TENSOR_TYPES, _Buf, _op_names

    buf = _Buf(model.path.read_bytes())
    root = buf.root()
    main = buf.tables(root, 2)[0]
    buffers = buf.tables(root, 4)
    tensors = []
    for t in buf.tables(main, 0):
        shape = buf.scalars(t, 0, "i")
        dtype = TENSOR_TYPES.get(buf.scalar(t, 1, "<b"), "float32")
        n = 1
        for d in shape:
            n *= max(int(d), 1)
        b = buf.scalar(t, 2, "<I")
        const = 0 < b < len(buffers) and (buf.vector(buffers[b], 0)[1] > 0
                                          or buf.scalar(buffers[b], 2, "<Q") > 0)  # fmt: skip
        tensors.append({"bytes": n * _ITEMSIZE.get(dtype, 4), "const": const, "dtype": dtype,
                        "quantized": buf.indirect(t, 4) is not None
                        and bool(buf.scalars(buf.indirect(t, 4), 2, "f"))})  # fmt: skip
    names = _op_names()
    codes = []
    for oc in buf.tables(root, 1):
        builtin = max(buf.scalar(oc, 3, "<i"), buf.scalar(oc, 0, "<b"))
        custom = buf.string(oc, 1)
        codes.append(custom or names.get(builtin, f"BUILTIN_{builtin}"))
    ops = []
    for op in buf.tables(main, 3):
        idx = buf.scalar(op, 0, "<I")
        ins = [i for i in buf.scalars(op, 1, "i") if i >= 0]
        outs = [i for i in buf.scalars(op, 2, "i") if i >= 0]
        ops.append((ins, outs, codes[idx] if idx < len(codes) else f"opcode_{idx}"))
    return tensors, ops


def estimate_arena_bytes(model: Model) -> int:
    """An estimate of the RAM the tensors need at run time (the TFLM arena, for TFLite).

    TFLite: the largest sum of non-constant input and output tensors of any one op,
    which a memory planner cannot go below. Other formats: twice the bytes of the
    inputs and outputs (the signature is all that is known without running).
    """
    if str(model.format) == "tflite":
        try:
            tensors, ops = _tflite_tensors(model)
        except Exception:  # a file the reader handles but this walk does not
            tensors, ops = [], []
        peak = 0
        for ins, outs, _ in ops:
            live = {i for i in (*ins, *outs) if i < len(tensors) and not tensors[i]["const"]}
            peak = max(peak, sum(tensors[i]["bytes"] for i in live))
        if peak:
            return peak
    total = 0
    for t in (*model.signature.inputs, *model.signature.outputs):
        n = 1
        for d in t.shape or ():
            n *= d if isinstance(d, int) and d > 0 else 1
        total += n * _dtype_size(t.dtype)
    return 2 * total


def _float_ops(model: Model) -> dict[str, int]:
    """Ops that compute in floating point (TFLite: a float non-constant tensor in or out)."""
    from collections import Counter

    if str(model.format) == "tflite":
        tensors, ops = _tflite_tensors(model)
        found: Counter[str] = Counter()
        for ins, outs, name in ops:
            live = [
                tensors[i] for i in (*ins, *outs) if i < len(tensors) and not tensors[i]["const"]
            ]
            if any(t["dtype"] in ("float32", "float16") for t in live):
                found[name] += 1
        return dict(found)
    sig = model.signature
    floats = [t for t in (*sig.inputs, *sig.outputs) if t.dtype in ("float32", "float16")]
    int_ops = any("quant" in k.lower() for k in model.op_histogram)
    return {} if (int_ops and not floats) else ({"float graph": 1} if not int_ops else {})


def check_limits(model: Model, profile: Profile, *, stage: str = "result") -> dict[str, Any]:
    """Check `model` against `profile`'s limits; a LimitError names the limit, value and remedy.

    `stage="source"` checks only what the source already decides (dynamic shapes
    that no --input-shape fixes); `stage="result"` checks everything. Returns the
    values that were checked, for the manifest.
    """
    lim = profile.limits
    name = profile.name
    checked: dict[str, Any] = {}
    if lim.static_shapes:
        dyn = [t for t in model.signature.inputs if t.is_dynamic]
        if dyn:
            t = dyn[0]
            shape = "?" if t.shape is None else "[" + ", ".join(
                str(d) if isinstance(d, int) else "?" for d in t.shape) + "]"  # fmt: skip
            raise LimitError(
                f"{model.path}: input '{t.name}' has dynamic shape {shape}, but {name} needs static "
                f"shapes (limits.static_shapes); fix it with --input-shape {t.name}=1,..."
            )
        checked["static_shapes"] = True
    if stage == "source":
        return checked
    if lim.max_model_bytes is not None:
        size = model.size_bytes
        checked["model_bytes"] = size
        if size > lim.max_model_bytes:
            raise LimitError(
                f"{model.path}: the model is {_fmt_bytes(size)}, over {name}'s max_model_bytes of "
                f"{_fmt_bytes(lim.max_model_bytes)}; quantize it to int8 (edgekit optimize), "
                "prune it, or use a smaller model"
            )
    if lim.max_arena_bytes is not None:
        arena = estimate_arena_bytes(model)
        checked["arena_bytes_estimate"] = arena
        if arena > lim.max_arena_bytes:
            raise LimitError(
                f"{model.path}: its tensors need about {_fmt_bytes(arena)} of RAM, over {name}'s "
                f"max_arena_bytes of {_fmt_bytes(lim.max_arena_bytes)}; use a smaller input "
                "shape, int8 activations, or a smaller model"
            )
    if lim.unsupported_ops:
        bad = sorted(set(model.op_histogram) & set(lim.unsupported_ops))
        if bad:
            raise LimitError(
                f"{model.path}: uses op{'s' if len(bad) > 1 else ''} {', '.join(bad)}, which "
                f"{name} cannot run (limits.unsupported_ops); replace those layers"
            )
    if lim.int8_only:
        floats = _float_ops(model)
        checked["float_ops"] = sum(floats.values())
        if floats:
            listed = ", ".join(f"{k}x{v}" for k, v in sorted(floats.items()))
            raise LimitError(
                f"{model.path}: {sum(floats.values())} ops still compute in float ({listed}), "
                f"but {name} runs int8 only (limits.int8_only); quantize fully to int8 with a "
                "calibration dataset (edgekit optimize --quantize int8)"
            )
    return checked


# --- precision and the optimize seam ------------------------------------------------


def _optimize_available() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("edgekit.optimize.pipeline") is not None
    except ImportError:
        return False


def default_optimizer(model: Model, profile: Profile, precision: str, work: Path) -> Model:
    """Quantize the source through `edgekit.optimize.optimize` (the seam deploy uses for int8).

    The optimize pass converts to the profile's format itself (TFLite quantization
    needs the Keras or SavedModel source), so it gets the source model.
    """
    from edgekit.model import load

    if not _optimize_available():
        raise UnsupportedModelError(
            f"{profile.name} asks for {precision}, and int8 needs the optimize pass, which this "
            "edgekit does not have yet; pass --precision fp32 (or fp16) if the profile allows it"
        )
    from edgekit.optimize import optimize

    result = optimize(model.path, profile, out=str(work), quantize=precision, measure=False)
    made = getattr(result, "model_path", None) or getattr(result, "model", None)
    if made is None:
        raise BundleError(f"the optimize pass returned no model for {profile.name}")
    loaded = made if isinstance(made, Model) else load(made)
    loaded.__dict__["optimize_report"] = {
        "met_budget": getattr(result, "met_budget", None),
        "warnings": list(getattr(result, "warnings", []) or []),
    }
    return loaded


def choose_precision(profile: Profile, requested: str | None, can_int8: bool) -> tuple[str, str]:
    """The precision to deploy at and why: the requested one, else the profile's first doable one."""
    allowed = list(profile.precision)
    if requested is not None:
        if requested not in allowed:
            raise InputError(
                f"--precision {requested} is not allowed by {profile.name} "
                f"(it allows {', '.join(allowed)})"
            )
        return requested, "requested"
    for p in allowed:
        if p in FLOAT_PRECISIONS or can_int8:
            why = "the profile's first choice" if p == allowed[0] else (
                f"the profile's first precision without the optimize pass ({allowed[0]} needs it)")  # fmt: skip
            return p, why
    return allowed[0], "the profile's first choice"


# --- runtimes, requirements -----------------------------------------------------------


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _min_version(dist: str) -> str:
    v = _version(dist)
    if not v:
        return dist
    parts = v.split(".")
    return f"{dist}>={'.'.join(parts[:2])}"


def runtime_requirement(profile: Profile) -> dict[str, Any]:
    """The pip requirement that runs the bundle on the target, and alternatives."""
    rt = profile.runtime
    if rt in ("litert", "tflite-micro"):
        req = _min_version("ai-edge-litert")
        return {"package": "ai-edge-litert", "requirement": req,
                "alternatives": ["tflite-runtime", "tensorflow"],
                "module": "ai_edge_litert"}  # fmt: skip
    if rt == "onnxruntime":
        gpu = any(p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
                  for p in profile.providers)  # fmt: skip
        pkg = "onnxruntime-gpu" if gpu else "onnxruntime"
        base = _min_version("onnxruntime").replace("onnxruntime", pkg, 1)
        alts = ["onnxruntime-qnn"] if "QNNExecutionProvider" in profile.providers else []
        return {"package": pkg, "requirement": base, "alternatives": alts, "module": "onnxruntime"}
    return {"package": "openvino", "requirement": _min_version("openvino"), "alternatives": [],
            "module": "openvino"}  # fmt: skip


def _host_device(profile: Profile) -> tuple[str, str | None, str | None]:
    """(runtime, device, provider) to run the profile's model on here, and why it differs."""
    from edgekit.runtimes import get_runtime

    rt = HOST_RUNTIME[profile.runtime]
    note = None
    device: str = profile.device
    provider = profile.provider
    if rt == "openvino":
        try:
            present = get_runtime("openvino").devices()
        except Exception:  # openvino missing: open_session will say so
            present = []
        if device not in present and device != "AUTO":
            note = f"{device} is not present here; measured on CPU"
            device = "CPU"
    elif rt == "onnxruntime":
        present = get_runtime("onnxruntime").devices()
        usable = [p for p in profile.providers if p in present]
        if provider not in present:
            note = f"{provider} is not available here; measured on {usable[0] if usable else 'CPU'}"
        provider = usable[0] if usable else "CPUExecutionProvider"
        device = "CPU" if provider == "CPUExecutionProvider" else device
    else:
        if device != "CPU" or (profile.delegate or "none") not in ("none", "xnnpack"):
            note = f"the {profile.delegate or device} delegate runs on the target only; measured on CPU"
        device = "CPU"
    return device, provider, note


def _machine_arch() -> str:
    m = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


# --- measuring --------------------------------------------------------------------------


def _measure_latency(
    model: Model, runtime: str, device: str, provider: str | None, threads: int | None,
    input_shapes: Mapping[str, tuple[int, ...]] | None,
) -> dict[str, Any]:  # fmt: skip
    """Latency on this machine: `edgekit.bench.benchmark` when present, else a short timing."""
    try:
        from edgekit.bench import benchmark

        rep = benchmark(model, runtime=runtime, device=device, provider=provider,
                        threads=threads, input_shapes=input_shapes, min_runs=10, min_time=0.2,
                        max_time=2.0, stop_on_interrupt=True)  # fmt: skip
        lat = dict(rep.latency_ms)
        return {"tool": "edgekit.bench.benchmark", "latency_ms": lat}
    except ImportError:
        pass
    import statistics

    from edgekit.inputs import generate_inputs
    from edgekit.runtimes import open_session

    with open_session(model, runtime, device=device, provider=provider, threads=threads) as s:
        call = s.bind(generate_inputs(model.signature, shapes=input_shapes)[0])
        call()
        samples = []
        deadline = time.perf_counter() + 1.0
        while len(samples) < 10 or (time.perf_counter() < deadline and len(samples) < 200):
            t0 = time.perf_counter_ns()
            call()
            samples.append((time.perf_counter_ns() - t0) / 1e6)
    return {"tool": "edgekit.deploy quick timing",
            "latency_ms": {"median": statistics.median(samples), "min": min(samples),
                           "n": len(samples)}}  # fmt: skip


# --- building the bundle -----------------------------------------------------------------


def _model_files(model: Model) -> list[Path]:
    if str(model.format) == "openvino":
        return [model.path, model.path.with_suffix(".bin")]
    return [model.path]


def _same_format_copy(src: Model, fmt: str, precision: str, work: Path) -> tuple[Model, list[str]]:
    """The source in the profile's format already: copied, and stored in fp16 when asked."""
    from edgekit.model import load

    notes: list[str] = []
    if fmt == "onnx":
        out = work / "model.onnx"
        if precision == "fp16":
            from edgekit.convert._common import onnx_to_fp16

            onnx_to_fp16(src.path, out)
        else:
            shutil.copyfile(src.path, out)
    elif fmt == "openvino":
        out = work / "model.xml"
        if precision == "fp16":
            import openvino as ov

            ov.save_model(ov.Core().read_model(str(src.path)), str(out), compress_to_fp16=True)
        else:
            shutil.copyfile(src.path, out)
            shutil.copyfile(src.path.with_suffix(".bin"), out.with_suffix(".bin"))
    else:
        from edgekit.verify import repaired_tflite

        out = work / "model.tflite"
        fixed = repaired_tflite(src, work)
        if fixed is not None:
            # The same model, with the one axis a 1-D tensor has: runtimes refuse the original.
            os.replace(fixed.path, out)
            notes.append("1-D tensors' per-axis quantization axis set to 0 (LiteRT, OpenVINO "
                         "and ONNX Runtime refuse the original's)")  # fmt: skip
        else:
            shutil.copyfile(src.path, out)
        if precision == "fp16":
            notes.append(
                "a TFLite source is kept as it is: fp16 needs the Keras or SavedModel source"
            )
    return load(out), notes


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _readme(profile: Profile, entry: str, req: dict[str, Any], precision: str) -> str:
    lines = [
        f"# {profile.name} bundle",
        "",
        f"{profile.summary}. Model `{entry}` ({profile.format}, {precision}) for the "
        f"{profile.runtime} runtime on {profile.device_label}.",
        "",
        "## Run it on the target",
        "",
        "```",
        "python -m pip install -r requirements.txt",
        "python run.py --input input.npz --output output.npz",
        "```",
        "",
        "`run.py` checks every file's sha256 against `manifest.json` first. The input `.npz`",
        "holds one array per model input, named as in the manifest's signature (one unnamed",
        "array is fine for a single-input model); without `--input` it runs on random data.",
        "",
    ]
    if profile.compiler is not None:
        argv = profile.compiler.argv(entry, ".")
        tool = argv[0]
        lines += [
            f"## Compile with {profile.compiler.name}",
            "",
            f"`{tool}` was not run here" + ("" if shutil.which(tool) else " (it is not on PATH)")
            + "; run it on a machine that has it (Linux x86-64), in this folder:",
            "",
            "```",
            " ".join(argv),
            "```",
            "",
            "It writes `model_edgetpu.tflite`; point `run.py --model` at that file and load it "
            "with the Edge TPU delegate (`libedgetpu`).",
            "",
        ]  # fmt: skip
    if profile.runtime == "tflite-micro":
        lines += [
            "## TensorFlow Lite for Microcontrollers",
            "",
            "Embed the model as a C array and size the tensor arena from the manifest's",
            "`limits_checked.arena_bytes_estimate` (add headroom):",
            "",
            "```",
            f"xxd -i {entry} > model_data.cc",
            "```",
            "",
            "`run.py` runs the same model with LiteRT on a host for checking outputs.",
            "",
        ]
    lines += [f"Runtime requirement: `{req['requirement']}`.", ""]
    return "\n".join(lines)


def _manifest_hash_files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def _place_bundle(built: Path, out: Path) -> None:
    """Rename the finished folder to `out`; an old bundle there is replaced only if edgekit made
    every file in it (its manifest lists them), otherwise nothing in `out` is touched."""
    if not out.exists():
        os.replace(built, out)
        return
    if not out.is_dir():
        raise BundleError(f"{out}: exists and is not a folder; choose another --out")
    entries = [p for p in out.rglob("*")]
    if not entries:
        out.rmdir()
        os.replace(built, out)
        return
    ours: set[str] = set()
    try:
        old = json.loads((out / MANIFEST).read_text())
        if old.get("created_by") == "edgekit":
            ours = set(old.get("files", {})) | {MANIFEST}
    except (OSError, ValueError):
        pass
    files = {str(p.relative_to(out)) for p in entries if p.is_file()}
    others = files - ours
    if not ours or others:
        some = sorted(others)[:3]
        raise BundleError(
            f"{out}: exists and holds files edgekit did not write ({', '.join(some)}); "
            "choose an empty or new --out folder"
        )
    trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.replace(out, trash / out.name)
    os.replace(built, out)
    shutil.rmtree(trash, ignore_errors=True)


def _archive(folder: Path, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.edgekit-tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                tar.add(p, arcname=f"{folder.name}/{p.relative_to(folder)}", recursive=False)
    os.replace(tmp, dest)


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
) -> Bundle:
    """Convert (and quantize) `model` for `profile` and write a verified bundle at `out`.

    `profile` is a name, a ``.toml`` path, a Profile, or ``"auto"`` (the fastest
    profile this machine runs, measured). `precision` overrides the profile's
    choice (it must be one the profile allows); int8 precisions go through
    `optimizer(model, profile, precision, work_dir) -> Model`, which defaults to
    `edgekit.optimize.optimize`. `input_shapes` fixes dynamic dimensions (a static-
    shape profile gets batch 1 for a dynamic batch dimension when none is given).
    `archive` also writes ``<out>.tar.gz``. Raises LimitError before anything is
    written when the model breaks one of the profile's limits.
    """
    from edgekit import __version__
    from edgekit.model import load
    from edgekit.profiles import Profile, load_profile

    say = log or (lambda _msg: None)
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
    shapes = dict(input_shapes or {})

    # 1. What the source decides: shapes on a static-shape target.
    if prof.limits.static_shapes:
        for t in src.signature.inputs:
            if t.name in shapes or t.shape is None:
                continue
            dyn = [i for i, d in enumerate(t.shape) if not isinstance(d, int)]
            if dyn == [0]:
                shapes[t.name] = (1, *t.shape[1:])  # type: ignore[arg-type]
                warnings.append(f"input '{t.name}': dynamic batch fixed to 1 ({prof.name} needs "
                                "static shapes)")  # fmt: skip
        fixed = _with_shapes(src, shapes)
        check_limits(fixed, prof, stage="source")

    from edgekit.verify import model_precision

    # A source already quantized in the profile's format ships as it is.
    prequantized = str(src.format) == prof.format and model_precision(src) == "int8"
    can_int8 = prequantized or optimizer is not None or _optimize_available()
    chosen, why = choose_precision(prof, precision, can_int8)
    if prequantized and chosen in INT_PRECISIONS:
        why = "the source is already quantized"
    if chosen in INT_PRECISIONS and not can_int8:
        default_optimizer(src, prof, chosen, Path("."))  # raises the "needs optimize" error
    if chosen != prof.precision[0] and precision is None:
        warnings.append(f"precision {chosen} ({why})")
    say(f"profile {prof.name}: {prof.format} on {prof.runtime}/{prof.device_label}, "
        f"precision {chosen}")  # fmt: skip

    out.parent.mkdir(parents=True, exist_ok=True)
    from edgekit.outputs import output_lock

    # A second deploy to the same folder fails at once instead of interleaving with this one.
    held = contextlib.ExitStack()
    held.enter_context(output_lock(out))
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.edgekit-work-", dir=out.parent))
    # The bundle is built under its final name inside a temporary sibling of `out`.
    stage_parent = Path(tempfile.mkdtemp(prefix=f".{out.name}.edgekit-", dir=out.parent))
    stage = stage_parent / out.name
    stage.mkdir()
    archive_path = None
    try:
        # 2. Convert to the profile's format (verified against the source), or quantize
        # through the optimize seam, which converts on its own.
        float_precision = chosen if chosen in FLOAT_PRECISIONS else "fp32"
        conversion: dict[str, Any] = {"path": [str(src.format)], "tools": [], "attempts": []}
        optimization: dict[str, Any] = {"precision": chosen, "reason": why, "passes": []}
        parity = None
        if chosen in INT_PRECISIONS and prequantized:
            result, notes = _same_format_copy(src, prof.format, "fp32", work)
            warnings += notes
        elif chosen in INT_PRECISIONS:
            opt = optimizer or default_optimizer
            qdir = work / "optimized"
            qdir.mkdir()
            result = opt(src, prof, chosen, qdir)
            conversion["path"] = [str(src.format), str(result.format)]
            conversion["tools"] = ["optimize"]
            optimization["passes"].append({"name": "quantize", "precision": chosen})
            optimization["optimize"] = result.__dict__.get("optimize_report")
            warnings += (optimization["optimize"] or {}).get("warnings", [])
            if str(result.format) != prof.format:
                raise BundleError(
                    f"the optimize pass made a {result.format} model; {prof.name} needs {prof.format}"
                )
            if verify:
                parity = _verify(src, result, "int8", tolerance, shapes)
        elif str(src.format) == prof.format:
            result, notes = _same_format_copy(src, prof.format, float_precision, work)
            warnings += notes
            if verify and float_precision == "fp16" and prof.format != "tflite":
                parity = _verify(src, result, "fp16", tolerance, shapes)
        else:
            from edgekit.convert import convert

            res = convert(src, prof.format, work / "converted", input_shapes=shapes or None,
                          verify=verify, tolerance=tolerance, precision=float_precision,
                          trust_model=trust_model)  # fmt: skip
            result = res.model
            parity = res.parity.to_dict() if res.parity is not None else None
            warnings += res.warnings
            conversion = {"path": res.path, "tools": res.tools,
                          "attempts": [a.to_dict() for a in res.attempts]}  # fmt: skip
            say(f"converted via {res.path_str}")
        if float_precision == "fp16" and chosen == "fp16":
            optimization["passes"].append({"name": "fp16 weights", "precision": "fp16"})

        # 4. Every limit, on the model that would ship.
        limits_checked = check_limits(result, prof, stage="result")

        # 5. Measure here.
        host_device, host_provider, device_note = _host_device(prof)
        if device_note:
            warnings.append(device_note)
        measurements: dict[str, Any] = {"parity": parity, "accuracy": None, "latency": None}
        arch = _machine_arch()
        on_target = arch == prof.arch and device_note is None
        measurements["measured_on"] = "target" if on_target else "host"
        measurements["machine"] = {"arch": arch, "system": platform.system(),
                                   "python": platform.python_version()}  # fmt: skip
        if not on_target:
            measurements["note"] = (f"host measurement on {arch}/{host_device}, not on "
                                    f"{prof.arch}/{prof.device_label}")  # fmt: skip
        run_threads = threads if threads is not None else prof.threads
        if measure:
            try:
                measurements["latency"] = _measure_latency(
                    result, HOST_RUNTIME[prof.runtime], host_device, host_provider,
                    run_threads, shapes or None)  # fmt: skip
            except EdgekitError as exc:
                warnings.append(f"latency not measured: {str(exc).replace(str(work) + '/', '')}")

        # 6. Assemble the bundle folder.
        entry = None
        for f in _model_files(result):
            target_name = "model" + f.suffix
            shutil.copyfile(f, stage / target_name)
            entry = entry or target_name
        assert entry is not None
        preprocess = None
        pre_file = src.path.parent / "preprocess.json"
        if pre_file.is_file():
            shutil.copyfile(pre_file, stage / "preprocess.json")
            preprocess = json.loads(pre_file.read_text())
        compiler = None
        if prof.compiler is not None:
            compiler = _run_compiler(prof, stage, entry, warnings)
        req = runtime_requirement(prof)
        _write_text(stage / "requirements.txt", f"{req['requirement']}\nnumpy>=1.26\n")
        _write_text(stage / "run.py", RUNNER_SOURCE)
        _write_text(stage / "README.md", _readme(prof, entry, req, chosen))
        from edgekit.bench.machine import package_versions
        from edgekit.model import load as _load

        shipped = _load(stage / entry)
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
                "files": [f"model{f.suffix}" for f in _model_files(result)],
                "size_bytes": shipped.size_bytes,
                "source": {
                    "name": src.path.name,
                    "format": str(src.format),
                    "sha256": src.sha256,
                },  # fmt: skip
            },
            "signature": shipped.signature.to_dict(),
            "preprocessing": preprocess,
            "runtime": {
                "name": prof.runtime,
                "host_runtime": HOST_RUNTIME[prof.runtime],
                "device": prof.device,
                "provider": prof.provider,
                "providers": list(prof.providers),
                "delegate": prof.delegate,
                "threads": run_threads,
                "requirement": req["requirement"],
                "package": req["package"],
                "module": req["module"],
                "alternatives": req["alternatives"],
            },
            "conversion": conversion,
            "optimization": optimization,
            "limits_checked": limits_checked,
            "measurements": measurements,
            "compiler": compiler,
            "auto_profile": auto_info,
            "warnings": warnings,
            "files": _manifest_hash_files(stage),
        }
        from edgekit.reports import write_page

        # The page reads no "files", so it is written first and listed with the rest.
        write_page(json.loads(json.dumps(manifest, default=str)), stage)
        manifest["files"] = _manifest_hash_files(stage)
        _write_text(stage / MANIFEST, json.dumps(manifest, indent=2, default=str) + "\n")
        if archive:
            archive_path = out.parent / f"{out.name}.tar.gz"
            _archive(stage, archive_path)
        _place_bundle(stage, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(stage_parent, ignore_errors=True)
        held.close()
    say(f"wrote {out}" + (f" and {archive_path}" if archive_path else ""))
    return Bundle(out, manifest, out / entry, archive_path, warnings)


def _run_compiler(prof: Profile, stage: Path, entry: str, warnings: list[str]) -> dict[str, Any]:
    """Run the profile's compiler step when its tool is on PATH; otherwise the README says how."""
    import subprocess

    assert prof.compiler is not None
    argv = prof.compiler.argv(entry, ".")
    info: dict[str, Any] = {"name": prof.compiler.name, "command": argv, "ran": False}
    if shutil.which(argv[0]) is None:
        warnings.append(f"{argv[0]} is not on PATH here; run `{' '.join(argv)}` in the bundle")
        return info
    before = {p.name for p in stage.iterdir()}
    proc = subprocess.run(argv, cwd=stage, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UnsupportedModelError(f"{argv[0]} failed on {entry}: {tail[0]}")
    info["ran"] = True
    info["outputs"] = sorted({p.name for p in stage.iterdir()} - before)
    return info


def _with_shapes(model: Model, shapes: Mapping[str, tuple[int, ...]]) -> Model:
    """A view of `model` whose signature has the given input shapes (for the static check)."""
    if not shapes:
        return model
    from edgekit.model import Signature, TensorSpec

    info = model._info
    ins = tuple(
        TensorSpec(t.name, tuple(shapes[t.name]), t.dtype, t.quantization)
        if t.name in shapes else t
        for t in info.signature.inputs
    )  # fmt: skip
    view = Model(path=model.path, format=model.format, files=model.files)
    view.__dict__["_info"] = type(info)(Signature(ins, info.signature.outputs), info.ops,
                                        info.params)  # fmt: skip
    return view


def _verify(
    src: Model, dst: Model, precision: str, tolerance: float | None,
    shapes: Mapping[str, tuple[int, ...]],
) -> dict[str, Any]:  # fmt: skip
    from edgekit.errors import VerificationError
    from edgekit.verify import compare_outputs

    parity = compare_outputs(src, dst, precision=precision, tolerance=tolerance,
                             input_shapes=shapes or None)  # fmt: skip
    if not parity.passed:
        raise VerificationError(
            f"{src.path}: the {precision} model does not reproduce the source: {parity.reason}; "
            "pass --tolerance to accept it or --no-verify to skip the check"
        )
    return parity.to_dict()


# --- --profile auto -----------------------------------------------------------------------


def choose_auto_profile(
    model: Model,
    *,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[Profile, dict[str, Any]]:
    """Among shipped profiles this machine runs (same arch, runtime installed, device present,
    float precision allowed), measure the model briefly on each and pick the fastest."""
    from edgekit.profiles import list_profiles

    say = log or (lambda _msg: None)
    candidates = []
    for p in list_profiles():
        if not p.runnable_here() or not any(x in FLOAT_PRECISIONS for x in p.precision):
            continue
        device, provider, note = _host_device(p)
        if note is not None:
            continue  # its device is not here: timing it on CPU would not measure that target
        candidates.append((p, device, provider))
    if not candidates:
        raise InputError(
            "--profile auto found no shipped profile this machine can run "
            f"({_machine_arch()}, runtimes installed here); name a profile instead"
        )
    results = []
    with tempfile.TemporaryDirectory(prefix="edgekit-auto-") as tmp:
        for p, device, provider in candidates:
            try:
                if str(model.format) == p.format:
                    m = model
                else:
                    from edgekit.convert import convert

                    m = convert(model, p.format, Path(tmp) / p.name, input_shapes=input_shapes,
                                verify=False).model  # fmt: skip
                # The profile's thread count, one thread, and every core (CPU devices only).
                counts = [p.threads]
                if device == "CPU":
                    counts += [n for n in (1, os.cpu_count()) if n not in counts]
                for n in counts:
                    lat = _measure_latency(m, HOST_RUNTIME[p.runtime], device, provider, n,
                                           input_shapes)  # fmt: skip
                    results.append((float(lat["latency_ms"]["median"]), p, n))
            except EdgekitError as exc:
                say(f"auto: {p.name} skipped ({exc})")
    if not results:
        raise InputError("--profile auto could not run the model on any candidate profile")
    best_per: dict[str, tuple[float, Profile, int | None]] = {}
    for ms, p, n in sorted(results, key=lambda r: r[0]):
        best_per.setdefault(p.name, (ms, p, n))
    ranked = sorted(best_per.values(), key=lambda r: r[0])
    best_ms, best, best_threads = ranked[0]

    def label(n: int | None) -> str:
        return "default threads" if n is None else f"{n} thread{'s' if n != 1 else ''}"

    runners = ", ".join(f"{p.name} {ms:.3g} ms ({label(n)})" for ms, p, n in ranked[1:])
    say(f"auto: chose {best.name} with {label(best_threads)} ({best_ms:.3g} ms median)"
        + (f"; runners-up: {runners}" if runners else ""))  # fmt: skip
    info = {"chosen": best.name, "threads": best_threads,
            "candidates": [{"profile": p.name, "threads": n, "median_ms": ms}
                           for ms, p, n in sorted(results, key=lambda r: r[0])]}  # fmt: skip
    return best, info


# --- reading and running bundles ----------------------------------------------------------


def _check_member(m: tarfile.TarInfo, archive: Path) -> str:
    name = m.name
    parts = Path(name).parts
    if (
        name.startswith(("/", "\\"))
        or os.path.isabs(name)
        or ".." in parts
        or (len(name) > 1 and name[1] == ":")
    ):
        raise BundleError(f"{archive}: member '{name}' points outside the bundle folder; refused")
    if m.issym() or m.islnk():
        raise BundleError(f"{archive}: member '{name}' is a link; refused")
    if not (m.isfile() or m.isdir()):
        raise BundleError(f"{archive}: member '{name}' is a device or special file; refused")
    return name


def extract_bundle(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract a bundle ``.tar.gz`` inside `dest` after checking every member; return the folder.

    Refuses absolute paths, ``..``, links and device or special files before
    writing anything.
    """
    archive, dest = Path(archive), Path(dest)
    try:
        tar = tarfile.open(archive, "r:gz")
    except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:
        raise BundleError(f"{archive}: not a readable .tar.gz bundle ({exc})") from None
    try:
        with tar:
            members = tar.getmembers()
            names = [_check_member(m, archive) for m in members]
            dest.mkdir(parents=True, exist_ok=True)
            root = dest.resolve()
            for m, name in zip(members, names, strict=True):
                target = (root / name).resolve()
                if root != target and root not in target.parents:
                    raise BundleError(f"{archive}: member '{name}' points outside {dest}; refused")
                if m.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(m)
                if src is None:
                    raise BundleError(f"{archive}: member '{name}' cannot be read")
                with src, open(target, "wb") as fh:
                    shutil.copyfileobj(src, fh)
                os.chmod(target, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BundleError(
            f"{archive}: a damaged .tar.gz bundle ({exc or type(exc).__name__})"
        ) from None
    tops = {Path(n).parts[0] for n in names if Path(n).parts}
    if len(tops) == 1 and (dest / next(iter(tops)) / MANIFEST).is_file():
        return dest / next(iter(tops))
    if (dest / MANIFEST).is_file():
        return dest
    raise BundleError(f"{archive}: holds no {MANIFEST}; not an edgekit bundle")


def load_bundle(
    path: str | os.PathLike, *, extract_to: str | os.PathLike | None = None
) -> LoadedBundle:
    """Open a bundle folder (or ``.tar.gz``, extracted into `extract_to` or a temporary folder),
    check every file's sha256 against its manifest, and say how to run it here."""
    p = Path(path)
    if p.is_file() and p.name.endswith((".tar.gz", ".tgz")):
        dest = Path(extract_to) if extract_to else Path(tempfile.mkdtemp(prefix="edgekit-bundle-"))
        p = extract_bundle(p, dest)
    if not (p / MANIFEST).is_file():
        raise BundleError(f"{p}: no {MANIFEST} here; not an edgekit bundle folder")
    try:
        manifest = json.loads((p / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"{p / MANIFEST}: unreadable ({exc})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{p / MANIFEST}: is not a JSON object; not an edgekit bundle manifest")
    if manifest.get("schema_version") != MANIFEST_SCHEMA_VERSION:
        raise BundleError(
            f"{p / MANIFEST}: schema_version {manifest.get('schema_version')!r}, this edgekit "
            f"reads {MANIFEST_SCHEMA_VERSION}"
        )
    files = manifest.get("files") or {}
    if not isinstance(files, dict) or not all(
        isinstance(rel, str) and "\0" not in rel and isinstance(digest, str)
        for rel, digest in files.items()
    ):
        raise BundleError(f"{p / MANIFEST}: 'files' is not a map of file names to sha256 digests")
    for key in ("model", "runtime"):
        if not isinstance(manifest.get(key, {}), dict):
            raise BundleError(f"{p / MANIFEST}: '{key}' is not an object; the manifest was edited")
    for rel, digest in files.items():
        f = (p / rel).resolve()
        if p.resolve() not in f.parents:
            raise BundleError(f"{p / MANIFEST}: lists '{rel}', outside the bundle; refused")
        if not f.is_file():
            raise BundleError(f"{p}: file '{rel}' listed in the manifest is missing")
        if sha256_file(f) != digest:
            raise BundleError(f"{p}: file '{rel}' does not match its sha256 in the manifest; "
                              "the bundle was changed after deploy, refusing to run it")  # fmt: skip
    entry = manifest.get("model", {}).get("entry")
    if not isinstance(entry, str) or entry not in files:
        raise BundleError(f"{p / MANIFEST}: names no checksummed model file")
    rt = manifest.get("runtime", {})
    for key in ("host_runtime", "name", "device", "provider"):
        if not isinstance(rt.get(key), str | None):
            raise BundleError(
                f"{p / MANIFEST}: runtime '{key}' is not a name; the manifest was edited"
            )
    if not isinstance(rt.get("threads"), int | None) or isinstance(rt.get("threads"), bool):
        raise BundleError(f"{p / MANIFEST}: runtime 'threads' is not a whole number")
    return LoadedBundle(
        path=p,
        manifest=manifest,
        model_path=p / entry,
        runtime=rt.get("host_runtime") or HOST_RUNTIME.get(rt.get("name"), rt.get("name")),
        device=rt.get("device") or "CPU",
        provider=rt.get("provider"),
        threads=rt.get("threads"),
    )


def run_bundle(
    path: str | os.PathLike,
    inputs: str | os.PathLike | None = None,
    output: str | os.PathLike | None = None,
    *,
    device: str | None = None,
) -> dict[str, Any]:
    """Check and run a bundle on its runtime (here), on an ``.npz`` of inputs or generated ones.

    Writes the outputs to `output` (``.npz``, atomically) when given; returns
    ``{"outputs": {name: array}, "runtime":..., "device":...}``.
    """
    import numpy as np

    from edgekit.inputs import generate_inputs
    from edgekit.model import load
    from edgekit.runtimes import open_session

    p = Path(path)
    if p.is_file() and p.name.endswith((".tar.gz", ".tgz")):
        with tempfile.TemporaryDirectory(prefix="edgekit-bundle-") as tmp:
            extracted = extract_bundle(p, tmp)
            return run_bundle(extracted, inputs, output, device=device)
    b = load_bundle(p)
    model = load(b.model_path)
    dev = device or b.device
    provider = b.provider
    if b.runtime == "onnxruntime" and device is None:
        from edgekit.runtimes import get_runtime

        present = get_runtime("onnxruntime").devices()
        usable = [p for p in b.manifest["runtime"].get("providers", []) if p in present]
        provider = usable[0] if usable else "CPUExecutionProvider"
        dev = None
    if b.runtime == "litert":
        dev = "CPU"
    if b.runtime == "openvino" and device is None:
        from edgekit.runtimes import get_runtime

        if dev not in get_runtime("openvino").devices() and dev != "AUTO":
            dev = "CPU"  # the bundle's device is not here: check it on the CPU
    if inputs is not None:
        feeds = _read_npz(Path(inputs), model)
    else:
        feeds = generate_inputs(model.signature)[0]
    with open_session(model, b.runtime, device=dev, provider=provider if b.runtime == "onnxruntime"
                      else None, threads=b.threads) as s:  # fmt: skip
        outs = s.run(feeds)
        used = getattr(s, "provider", None) or s.device
    if output is not None:
        out = Path(output)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.edgekit-tmp.npz")
        np.savez(tmp, **outs)
        os.replace(tmp, out)
    return {"outputs": outs, "runtime": b.runtime, "device": used, "bundle": str(b.path)}


def _read_npz(path: Path, model: Model) -> dict[str, Any]:
    import numpy as np

    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable .npz file ({exc})") from None
    names = [t.name for t in model.signature.inputs]
    with data:
        keys = list(data.keys())
        if set(names) <= set(keys):
            return {n: data[n] for n in names}
        if len(names) == 1 and len(keys) == 1:
            return {names[0]: data[keys[0]]}
    raise InputError(f"{path}: holds arrays {keys}; the model's inputs are {names}")


# The standalone runner written into every bundle: only numpy and the target's runtime.
RUNNER_SOURCE = r'''#!/usr/bin/env python3
"""Run this edgekit bundle with only the target's runtime and numpy (no edgekit needed).

    python run.py [--input input.npz] [--output output.npz] [--model FILE]

Checks every file's sha256 against manifest.json, loads the model on the runtime
the manifest names, runs it once on the .npz inputs (or random ones) and writes
the outputs to a .npz file.
"""

import argparse
import contextlib
import hashlib
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def fail(msg):
    sys.stderr.write("run.py: error: " + msg + "\n")
    sys.exit(2)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check(manifest):
    for rel, digest in manifest["files"].items():
        path = os.path.join(HERE, rel)
        if not os.path.isfile(path):
            fail("file %s listed in manifest.json is missing" % rel)
        if sha256(path) != digest:
            fail("file %s does not match its sha256 in manifest.json; refusing to run" % rel)


def make_inputs(sig, path):
    specs = sig["inputs"]
    if path:
        data = np.load(path, allow_pickle=False)
        keys = list(data.keys())
        if all(s["name"] in keys for s in specs):
            return [data[s["name"]] for s in specs]
        if len(specs) == 1 and len(keys) == 1:
            return [data[keys[0]]]
        fail("%s holds %s; the model's inputs are %s" % (path, keys, [s["name"] for s in specs]))
    rng = np.random.default_rng(0)
    feeds = []
    for s in specs:
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in (s["shape"] or [1])]
        dt = np.dtype(s["dtype"])
        if dt.kind == "f":
            feeds.append(rng.uniform(-1, 1, shape).astype(dt))
        else:
            info = np.iinfo(dt)
            feeds.append(rng.integers(info.min, info.max, shape, endpoint=True).astype(dt))
    return feeds


def run_tflite(model_path, feeds, threads):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            try:
                from tensorflow.lite import Interpreter
            except ImportError:
                fail("no TFLite interpreter; run: pip install -r requirements.txt")
    interp = Interpreter(model_path=model_path, num_threads=threads)
    details = interp.get_input_details()
    for d, x in zip(details, feeds):
        if tuple(d["shape"]) != tuple(x.shape):
            interp.resize_tensor_input(d["index"], list(x.shape))
    interp.allocate_tensors()
    for d, x in zip(interp.get_input_details(), feeds):
        interp.set_tensor(d["index"], x)
    interp.invoke()
    return [(d["name"], interp.get_tensor(d["index"])) for d in interp.get_output_details()]


def run_onnx(model_path, feeds, threads, providers):
    try:
        import onnxruntime as ort
    except ImportError:
        fail("onnxruntime is not installed; run: pip install -r requirements.txt")
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    present = ort.get_available_providers()
    use = [p for p in providers if p in present] or ["CPUExecutionProvider"]
    sess = ort.InferenceSession(model_path, so, providers=use)
    names = [i.name for i in sess.get_inputs()]
    outs = sess.run(None, dict(zip(names, feeds)))
    return list(zip([o.name for o in sess.get_outputs()], outs))


def run_openvino(model_path, feeds, threads, device, precision):
    try:
        import openvino as ov
    except ImportError:
        fail("openvino is not installed; run: pip install -r requirements.txt")
    core = ov.Core()
    if device not in core.available_devices:
        sys.stderr.write("run.py: %s not present, running on CPU\n" % device)
        device = "CPU"
    config = {}
    if device == "CPU":
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        if precision == "fp32":
            # The CPU plugin computes in bf16 on CPUs with AVX-512 BF16 or AMX unless told.
            config["INFERENCE_PRECISION_HINT"] = "f32"
    compiled = core.compile_model(core.read_model(model_path), device, config)
    res = compiled.create_infer_request().infer(feeds)
    out = []
    for i, port in enumerate(compiled.outputs):
        try:
            name = port.get_any_name()
        except RuntimeError:
            name = "output_%d" % i
        out.append((name, np.array(res[port])))
    return out


def main():
    ap = argparse.ArgumentParser(description="Run this edgekit bundle.")
    ap.add_argument("--input", help=".npz with one array per model input")
    ap.add_argument("--output", default="output.npz", help=".npz to write the outputs to")
    ap.add_argument("--model", help="model file to run instead of the manifest's (e.g. compiled)")
    args = ap.parse_args()
    with open(os.path.join(HERE, "manifest.json"), encoding="utf-8") as fh:
        manifest = json.load(fh)
    check(manifest)
    rt = manifest["runtime"]
    model_path = args.model or os.path.join(HERE, manifest["model"]["entry"])
    feeds = make_inputs(manifest["signature"], args.input)
    fmt = manifest["format"]
    if fmt == "tflite":
        outs = run_tflite(model_path, feeds, rt.get("threads"))
    elif fmt == "onnx":
        outs = run_onnx(model_path, feeds, rt.get("threads"), rt.get("providers") or [])
    else:
        outs = run_openvino(model_path, feeds, rt.get("threads"), rt.get("device") or "CPU",
                            manifest.get("precision"))
    names = [o["name"] for o in manifest["signature"]["outputs"]]
    if len(names) != len(outs):
        names = [n for n, _ in outs]
    tmp = args.output + ".tmp.npz"
    np.savez(tmp, **{n: a for n, (_, a) in zip(names, outs)})
    os.replace(tmp, args.output)
    for n, (_, a) in zip(names, outs):
        print("%s %s %s" % (n, list(a.shape), a.dtype))
    print("wrote " + args.output)


if __name__ == "__main__":
    main()
'''
