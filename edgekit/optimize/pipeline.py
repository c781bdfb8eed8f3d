"""`optimize()`: prune, convert, quantize each allowed precision, prove and measure each
candidate against the fp32 baseline, keep the best, and write it with its report."""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import (
    DatasetError,
    EdgekitError,
    InputError,
    UnsupportedModelError,
)
from edgekit.optimize import _tools as T
from edgekit.optimize import debug
from edgekit.optimize.base import QuantOptions

INT8 = ("int8", "int8-float-fallback")
SLOWER_MARGIN = 1.03  # within 3% counts as "not slower" on a noisy shared machine


@dataclass
class Candidate:
    """One optimized model tried: how it was made and what it measured."""

    name: str
    precision: str
    path: Path | None = None
    kept_float: list[str] = field(default_factory=list)
    size_bytes: int | None = None
    gzip_bytes: int | None = None
    accuracy: float | None = None
    parity: T.Parity | None = None
    accuracy_drop: float | None = None  # points vs baseline (or disagreement when unlabelled)
    latency_ms: float | None = None
    meets_budget: bool = False
    error: str | None = None
    outputs: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "precision": self.precision,
            "kept_float": self.kept_float,
            "size_bytes": self.size_bytes,
            "gzip_bytes": self.gzip_bytes,
            "accuracy": _r(self.accuracy),
            "accuracy_drop": _r(self.accuracy_drop, 3),
            "parity": self.parity.to_dict() if self.parity else None,
            "latency_ms": _r(self.latency_ms, 4),
            "meets_budget": self.meets_budget,
            "error": self.error,
        }


def _r(v: float | None, nd: int = 6) -> float | None:
    return None if v is None else round(float(v), nd)


@dataclass
class OptimizeResult:
    """What `optimize` wrote: the model, report.json / report.md, and the report itself."""

    model_path: Path
    report_path: Path
    markdown_path: Path
    report: dict[str, Any]
    met_budget: bool
    warnings: list[str]


@dataclass
class _Data:
    calib: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray | None
    x_train: np.ndarray | None
    y_train: np.ndarray | None
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    source: str  # where it came from, for the report
    labelled: bool


# --- data ------------------------------------------------------------------------------


def _input_shape(model: Any) -> tuple[Any, ...]:
    spec = model.signature.inputs[0]
    if spec.shape is None:
        raise InputError(f"{model.path}: input '{spec.name}' has unknown rank.")
    return tuple(spec.shape)


def _dataset_from(spec: Any, model: Any) -> Any:
    """A Dataset from a source string, a Dataset, or None."""
    from edgekit.data import Dataset, Preprocess, load_dataset

    if spec is None or isinstance(spec, Dataset):
        return spec
    pre = Preprocess.find_for(model.path)
    shape = _input_shape(model)
    try:
        if pre is not None:
            ds = load_dataset(str(spec), pre)
        else:
            dims = [d for d in shape[1:]]
            image = len(dims) == 3 and all(isinstance(d, int) for d in dims)
            if image and dims[-1] in (1, 3):
                ds = load_dataset(str(spec), image_size=(dims[0], dims[1]), channels=dims[-1],
                                  normalize=False)  # fmt: skip
            elif image and dims[0] in (1, 3):
                ds = load_dataset(str(spec), layout="nchw", image_size=(dims[1], dims[2]),
                                  channels=dims[0], normalize=False)  # fmt: skip
            else:
                # A model without preprocess.json takes the data as it is stored.
                ds = load_dataset(str(spec), normalize=False)
    except EdgekitError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad data argument
        raise DatasetError(f"cannot read calibration data {spec!r}: {_first_line(exc)}") from None
    want = tuple(d for d in shape[1:])
    got = tuple(ds.x_test.shape[1:])
    if len(want) != len(got) or any(
        isinstance(w, int) and w != g for w, g in zip(want, got, strict=True)
    ):
        raise InputError(
            f"data {spec!r} gives samples of shape {list(got)}, but {model.path.name} "
            f"expects {list(want)}; pass data that matches the model's input."
        )
    return ds


def _first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def _recipe_dataset(model_path: Path) -> str | None:
    """The dataset an `edgekit train` run used, from metrics.json / preprocess.json beside it."""
    folder = model_path if model_path.is_dir() else model_path.parent
    for name in ("metrics.json", "preprocess.json"):
        f = folder / name
        if f.is_file():
            try:
                d = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            src = d.get("dataset") or d.get("source")
            if src:
                return str(src)
    return None


def _resolve_data(
    model: Any,
    calib_data: Any,
    eval_data: Any,
    calib_samples: int,
    warnings: list[str],
    seed: int,
) -> _Data:
    from edgekit.inputs import generate_inputs

    rng = np.random.default_rng(seed)
    if calib_data is None:
        calib_data = _recipe_dataset(model.path)
    cds = _dataset_from(calib_data, model)
    eds = _dataset_from(eval_data, model) if eval_data is not None else cds
    if cds is None:
        feeds = generate_inputs(model.signature, count=max(calib_samples, 16), seed=seed)
        name = model.signature.inputs[0].name
        x = np.concatenate([f[name] for f in feeds]).astype(np.float32)
        warnings.append(
            "no calibration data was given and none is known for this model, so calibration "
            "and checks used generated random inputs: accuracy is UNPROVEN (pass --calib-data "
            "and --eval-data to prove it)"
        )
        return _Data(x[:calib_samples], x, None, None, None, None, None, "generated inputs", False)
    pick = rng.permutation(len(cds.x_train))[:calib_samples]
    calib = np.asarray(cds.x_train[pick], np.float32)
    return _Data(
        calib,
        np.asarray(eds.x_test, np.float32),
        np.asarray(eds.y_test),
        np.asarray(cds.x_train, np.float32),
        np.asarray(cds.y_train),
        np.asarray(cds.x_val, np.float32),
        np.asarray(cds.y_val),
        f"{cds.source} (calibration: {len(calib)} train samples; eval: "
        f"{len(eds.x_test)} test samples of {eds.source})",
        True,
    )


# --- float sources per format ----------------------------------------------------------


class _Sources:
    """The float model in the target format, made once: what each quantizer starts from."""

    def __init__(self, work: Path, fmt: str) -> None:
        self.work = work
        self.fmt = fmt

    def from_keras(self, km: Any, tag: str) -> Any:
        if self.fmt == "tflite":
            return km
        onnx_path = T.keras_to_onnx(km, self.work / tag / "model.onnx")
        if self.fmt == "onnx":
            return onnx_path
        return T.onnx_to_openvino(onnx_path, self.work / tag / "ov" / "model.xml")


def _weight_stats(km: Any = None, path: Path | None = None, fmt: str | None = None) -> dict:
    """Parameter count and fraction of exactly-zero weights."""
    if km is not None:
        ws = [np.asarray(w) for w in km.get_weights()]
    elif path is not None and fmt == "onnx":
        import onnx
        from onnx import numpy_helper

        m = onnx.load(str(path))
        ws = [numpy_helper.to_array(i) for i in m.graph.initializer]
        ws = [w for w in ws if w.dtype.kind == "f"]
    else:
        return {"params": None, "sparsity": None}
    total = int(sum(w.size for w in ws))
    zeros = int(sum(int((w == 0).sum()) for w in ws))
    return {"params": total, "sparsity": round(zeros / total, 4) if total else 0.0}


# --- the flow --------------------------------------------------------------------------


def _precisions(quantize: str | None, profile: Any, fmt: str) -> list[str]:
    from edgekit.optimize import PASSES, QUANTIZE_CHOICES, QUANTIZER

    supported = PASSES[QUANTIZER[fmt]].precisions
    q = quantize or ("auto" if len(profile.precision) > 1 else profile.precision[0])
    if q not in QUANTIZE_CHOICES and q not in supported:
        raise InputError(f"unknown --quantize {q!r}; choose from {', '.join(QUANTIZE_CHOICES)}.")
    if q == "none":
        return ["fp32"]
    if q == "auto":
        wanted = list(profile.precision)
    else:
        wanted = [q]
    missing = [p for p in wanted if p not in supported]
    if q != "auto" and missing:
        raise UnsupportedModelError(
            f"profile {profile.name} runs {fmt} models, which edgekit cannot quantize to "
            f"{q}; choose from {', '.join(p for p in supported if p != 'fp32')}."
        )
    return [p for p in wanted if p in supported] or ["fp32"]


def _drop(base: Candidate, c: Candidate, labelled: bool) -> float:
    if labelled and base.accuracy is not None and c.accuracy is not None:
        return 100.0 * (base.accuracy - c.accuracy)
    return 100.0 * (1.0 - (c.parity.top1_agreement if c.parity else 0.0))


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
) -> OptimizeResult:
    """Make `model` smaller and faster for `profile`, prove what it cost, write it to `out`.

    Steps: optional pruning (Keras: magnitude or structured with fine-tuning; ONNX and
    TFLite: weight magnitude pruning, compressed size only); conversion to the
    profile's format; each precision the profile allows (``quantize="auto"``) or the
    one asked for; parity and accuracy of every candidate against the fp32 baseline;
    for int8 beyond ``max_accuracy_drop`` (points), the worst layers kept in float one
    at a time; latency of all candidates measured interleaved on the profile's runtime.
    The fastest candidate within the budget is written to `out` with report.json and
    report.md; when none meets it, the one with the smallest drop is written and the
    report says so.

    Latency is measured with `threads` (default 1: quiet and comparable on a shared
    machine; pass the profile's thread count to mimic it). Calibration data defaults
    to the dataset of the `edgekit train` run the model came from; without any, random
    inputs are used and the report says accuracy is unproven.
    """
    from edgekit.model import load
    from edgekit.optimize import report as R
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
    if src_fmt == "tflite" and fmt == "tflite" and quantize not in (None, "none", "fp32"):
        raise UnsupportedModelError(
            f"{src.path.name} is already a .tflite file, which cannot be re-quantized; "
            "give its Keras or SavedModel source, or use --quantize none."
        )
    if src_fmt in ("onnx", "openvino") and fmt == "tflite":
        raise UnsupportedModelError(
            f"profile {prof.name} needs a TFLite model and edgekit cannot convert {src_fmt} "
            "to TFLite; give the Keras or SavedModel source."
        )
    if src_fmt == "openvino" and fmt != "openvino":
        raise UnsupportedModelError(
            f"profile {prof.name} needs a {fmt} model and edgekit cannot convert OpenVINO IR "
            f"to {fmt}; give the ONNX or Keras source."
        )
    # SavedModel and TFLite sources reach ONNX Runtime / OpenVINO through edgekit.convert.
    via_onnx = src_fmt in ("savedmodel", "tflite") and fmt in ("onnx", "openvino")
    requant_tflite = src_fmt == "tflite" and fmt == "tflite"
    precisions = ["fp32"] if requant_tflite else _precisions(quantize, prof, fmt)
    if requant_tflite and quantize is None and prof.precision != ("fp32",):
        warnings.append(
            f"{src.path.name} is already a .tflite file, which cannot be re-quantized: the "
            f"profile's {', '.join(prof.precision)} were not tried; give the Keras source"
        )

    data = _resolve_data(src, calib_data, eval_data, calib_samples, warnings, seed)
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=parent))
    try:
        proc, proc_fmt = src, src_fmt
        if via_onnx:
            from edgekit.convert import convert

            say(f"converting {src_fmt} to ONNX (edgekit.convert)")
            conv = convert(src, "onnx", work / "converted" / "model.onnx")
            proc, proc_fmt = conv.model, "onnx"
            warnings.append(f"the {src_fmt} source was converted first: {conv.path_str}")
        result = _run(
            proc, proc_fmt, prof, fmt, runtime, precisions, data, work, warnings,
            prune=prune, structured=structured, quantize=quantize,
            max_drop=max_accuracy_drop, threads=threads, epochs=finetune_epochs,
            max_float_layers=max_float_layers, graph_opt=graph_opt, measure=measure,
            say=say,
        )  # fmt: skip
        final = work / "final"
        final.mkdir()
        chosen: Candidate = result["chosen"]
        model_out = final / T.MODEL_FILE[fmt]
        T.copy_model(chosen.path, model_out)
        result["elapsed_s"] = round(time.time() - started, 1)
        rep = R.build_report(src=src, profile=prof, runtime=runtime, data=data, **result)
        R.write(rep, final)
        if out.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=parent))
            os.replace(out, trash / "old")
            os.replace(final, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(final, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return OptimizeResult(
        model_path=out / T.MODEL_FILE[fmt],
        report_path=out / "report.json",
        markdown_path=out / "report.md",
        report=rep,
        met_budget=bool(rep["meets_budget"]),
        warnings=list(rep["warnings"]),
    )


def _run(
    src: Any,
    src_fmt: str,
    prof: Any,
    fmt: str,
    runtime: str,
    precisions: list[str],
    data: _Data,
    work: Path,
    warnings: list[str],
    *,
    prune: float | None,
    structured: bool,
    quantize: str | None,
    max_drop: float,
    threads: int | None,
    epochs: int | None,
    max_float_layers: int,
    graph_opt: bool,
    measure: bool,
    say: Any,
) -> dict[str, Any]:
    from edgekit.optimize import QUANTIZER, get_pass

    sources = _Sources(work, fmt)
    prune_info: dict[str, Any] | None = None
    qopts = QuantOptions(
        per_channel=prof.quantization.per_channel,
        quant_format=prof.quantization.quant_format,
        activation_type=prof.quantization.activation_type,
        weight_type=prof.quantization.weight_type,
        reduce_range=prof.quantization.reduce_range,
        io_dtype=prof.input_dtype if prof.input_dtype in ("int8", "uint8", "int16") else None,
    )
    quantizer = get_pass(QUANTIZER[fmt])

    # 1. baseline: the source in the target format at fp32, and the float source to quantize
    say("converting the source to the profile's format (fp32 baseline)")
    km = None
    if src_fmt == "keras":
        from edgekit.formats.keras import load_keras

        km = load_keras(src)
        base_src = sources.from_keras(km, "base_src")
        before_stats = _weight_stats(km=km)
    elif src_fmt == "savedmodel":
        base_src = src.path
        if fmt == "openvino":
            import openvino as ov

            p = work / "base_src" / "model.xml"
            p.parent.mkdir(parents=True)
            ov.save_model(ov.convert_model(str(src.path)), str(p), compress_to_fp16=False)
            base_src = p
        before_stats = {"params": src.param_count, "sparsity": None}
    elif src_fmt == "onnx":
        base_src = (
            src.path
            if fmt == "onnx"
            else T.onnx_to_openvino(src.path, work / "base_src" / "model.xml")
        )
        before_stats = _weight_stats(path=src.path, fmt="onnx")
    else:  # tflite or openvino, already in the target format
        base_src = src.path
        before_stats = {"params": src.param_count, "sparsity": None}
    base_path = (
        Path(base_src) if src_fmt == "tflite"
        else quantizer(base_src, work / "baseline" / T.MODEL_FILE[fmt], "fp32")
    )  # fmt: skip
    base = Candidate("baseline fp32", "fp32", base_path)

    # 2. pruning
    float_src = base_src
    after_stats = dict(before_stats)
    if prune:
        say(f"pruning to {prune:.0%} ({'structured' if structured else 'magnitude'})")
        if src_fmt == "keras":
            if not data.labelled:
                raise InputError(
                    "pruning a Keras model fine-tunes it, which needs labelled data; pass "
                    "--calib-data (e.g. digits, npz:FILE, images:DIR)."
                )
            name = "prune_structured" if structured else "prune_magnitude"
            fn = get_pass(name)
            xt, yt = data.x_train, data.y_train
            val = (data.x_val, data.y_val) if data.x_val is not None and len(data.x_val) else None
            kw = {"validation": val} if epochs is None else {"validation": val, "epochs": epochs}
            if structured:
                pr = fn(km, prune, xt, yt, **kw)
            else:
                pr = fn(km, xt, yt, prune, **kw)
            float_src = sources.from_keras(pr.model, "pruned_src")
            after_stats = _weight_stats(km=pr.model)
            prune_info = {
                "method": name,
                "target_sparsity": prune,
                "layer_sparsity": {k: round(v, 4) for k, v in pr.layer_sparsity.items()},
                "params_before": pr.params_before,
                "params_after": pr.params_after,
            }
        elif src_fmt in ("onnx", "tflite"):
            if structured:
                raise UnsupportedModelError(
                    f"structured pruning rebuilds Keras models; {src.path.name} is {src_fmt}, "
                    "so use --prune without --structured (weight pruning)."
                )
            pw = get_pass("prune_weights")
            pruned_file = work / "pruned_src" / src.path.name
            res = pw(src.path, pruned_file, float(prune), src_fmt)
            warnings.append(res.note)
            prune_info = {
                "method": "prune_weights",
                "target_sparsity": prune,
                "layer_sparsity": {k: round(v, 4) for k, v in res.layer_sparsity.items()},
                "note": res.note,
            }
            if src_fmt == "onnx":
                after_stats = _weight_stats(path=pruned_file, fmt="onnx")
                float_src = (
                    pruned_file if fmt == "onnx"
                    else T.onnx_to_openvino(pruned_file, work / "pruned_src" / "ov" / "model.xml")
                )  # fmt: skip
            else:
                float_src = pruned_file
        else:
            raise UnsupportedModelError(
                f"edgekit cannot prune {src_fmt} models; prune the Keras or ONNX source."
            )

    # 3. reference outputs on eval data
    say("measuring the baseline's outputs")
    base.outputs = T.predict(base.path, data.x_eval, runtime=runtime)
    base.accuracy = T.accuracy(base.outputs, data.y_eval)
    base.parity = T.parity(base.outputs, base.outputs)
    base.accuracy_drop = 0.0
    base.meets_budget = True

    def evaluate(c: Candidate) -> Candidate:
        c.size_bytes = T.size_bytes(c.path)
        c.gzip_bytes = T.gzip_bytes(c.path)
        c.outputs = T.predict(c.path, data.x_eval, runtime=runtime)
        c.accuracy = T.accuracy(c.outputs, data.y_eval)
        c.parity = T.parity(base.outputs, c.outputs)
        c.accuracy_drop = _drop(base, c, data.labelled)
        c.meets_budget = c.accuracy_drop <= max_drop + 1e-9
        return c

    base.size_bytes, base.gzip_bytes = T.size_bytes(base.path), T.gzip_bytes(base.path)

    # 4. candidates
    cands: list[Candidate] = []
    graph_info = None
    for p in precisions:
        tag = f"{'pruned ' if prune else ''}{p}"
        say(f"making candidate: {tag}")
        c = Candidate(tag, p)
        try:
            if src_fmt == "tflite":
                c.path = Path(float_src)
            else:
                c.path = quantizer(
                    float_src, work / "cand" / p / T.MODEL_FILE[fmt], p, data.calib, qopts
                )
            if fmt == "onnx" and p == "fp32" and graph_opt:
                g = get_pass("graph_opt")(
                    c.path, work / "cand" / "fp32-ortopt" / "model.onnx", data.x_eval[:16],
                    threads=threads or 1,
                )  # fmt: skip
                graph_info = {
                    "kept": g.kept,
                    "reason": g.reason,
                    "latency_before_ms": _r(g.latency_before_ms, 4),
                    "latency_after_ms": _r(g.latency_after_ms, 4),
                }
                c.path = g.path
            evaluate(c)
        except EdgekitError as exc:
            c.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - one failing precision must not stop the rest
            c.error = f"{type(exc).__name__}: {_first_line(exc)}"
        cands.append(c)

    # ONNX Runtime: which signedness is faster depends on the CPU and ORT's kernels, so
    # auto mode also tries the other one and lets the measurement decide.
    if (
        fmt == "onnx"
        and "int8" in precisions
        and quantize in (None, "auto")
        and (qopts.activation_type is None)
    ):
        from dataclasses import replace

        from edgekit.optimize.quant_onnx import cpu_types

        other = "int8" if cpu_types(qopts)[0] == "uint8" else "uint8"
        c = Candidate(f"{'pruned ' if prune else ''}int8 ({other} activations)", "int8")
        try:
            c.path = quantizer(float_src, work / "cand" / "int8-alt" / T.MODEL_FILE[fmt], "int8",
                               data.calib, replace(qopts, activation_type=other))  # fmt: skip
            evaluate(c)
        except Exception as exc:  # noqa: BLE001 - an alternative that fails is just not kept
            c.error = f"{type(exc).__name__}: {_first_line(exc)}"
        cands.append(c)

    # 5. int8 beyond budget: keep the worst layers float, one at a time
    layer_errs: list[Any] = []
    recovery = None
    int8 = next((c for c in cands if c.precision == "int8" and c.error is None), None)
    fp32 = next((c for c in cands if c.precision == "fp32" and c.error is None), None)
    recover = int8 is not None and not int8.meets_budget and max_float_layers > 0
    if recover and fp32 is not None and not fp32.meets_budget:
        recover = False
        warnings.append(
            f"{fp32.name} alone already drops {fp32.accuracy_drop:.2f} points, beyond the "
            f"budget: keeping int8 layers in float cannot recover that (prune less, or "
            f"fine-tune longer with --epochs)"
        )
    if int8 is not None:
        # Always measured for the report's worst layers (few samples: intermediate
        # activations of every layer are held in memory); more when the loop needs it.
        say("measuring per-layer quantization error")
        try:
            n = 16 if recover else 4
            layer_errs = debug.layer_errors(fmt, float_src, data.calib[:n], qopts)
        except Exception as exc:  # noqa: BLE001 - debugging is best effort, said in warnings
            warnings.append(
                f"per-layer quantization error could not be measured: {_first_line(exc)}"
            )
    if recover:
        say("int8 misses the accuracy budget: keeping the worst layers in float")
        if layer_errs:
            counter = iter(range(1000))

            def make(names: tuple[str, ...]) -> Candidate:
                c = Candidate("", "int8", kept_float=list(names))
                c.path = quantizer(
                    float_src, work / "cand" / f"int8-keep{next(counter)}" / T.MODEL_FILE[fmt],
                    "int8", data.calib, qopts.with_float(*names),
                )  # fmt: skip
                return evaluate(c)

            recovery = debug.keep_worst_float(
                layer_errs, make, lambda c: c.accuracy_drop, max_drop, max_float_layers
            )
            if recovery.best is not None:
                rc: Candidate = recovery.best.path
                n = len(rc.kept_float)
                rc.name = f"{'pruned ' if prune else ''}int8, {n} layer{'s' * (n != 1)} float"
                cands.append(rc)

    ok = [c for c in cands if c.error is None]
    if not ok:
        errs = "; ".join(f"{c.name}: {c.error}" for c in cands)
        raise UnsupportedModelError(f"no candidate could be made for {prof.name}: {errs}")

    # 6. latency, interleaved with the baseline
    if measure:
        say("measuring latency (interleaved)")
        feed = data.x_eval[:1]
        lat = T.time_models(
            [base.path, *[c.path for c in ok]], feed, runtime=runtime, threads=threads or 1
        )
        base.latency_ms = lat[0]
        for c, t in zip(ok, lat[1:], strict=True):
            c.latency_ms = t

    # 7. choose
    meeting = [c for c in ok if c.meets_budget]
    explicit = quantize not in (None, "auto")
    if meeting:
        pool = meeting
        if explicit:
            same = [c for c in meeting if c.precision == (precisions[0])]
            pool = same or meeting
        chosen = min(pool, key=lambda c: c.latency_ms if c.latency_ms is not None else 0.0)
        met = True
    else:
        chosen = min(ok, key=lambda c: (c.accuracy_drop, c.latency_ms or 0.0))
        met = False
        warnings.append(
            f"NO candidate meets the accuracy budget of {max_drop:g} points; tried "
            + ", ".join(f"{c.name} ({c.accuracy_drop:.2f} pts)" for c in ok)
            + f"; saved the best ({chosen.name}) labelled as NOT meeting the budget"
        )
    for c in cands:
        if c.error:
            warnings.append(f"candidate {c.name} failed: {c.error}")

    # 8. never slower without saying so
    slow_ops = None
    if (
        measure
        and chosen.latency_ms is not None
        and base.latency_ms is not None
        and chosen.latency_ms > base.latency_ms * SLOWER_MARGIN
    ):
        slow_ops = _slow_ops(base.path, chosen.path, data.x_eval[:1], runtime, threads)
        warnings.append(
            f"the optimized model ({chosen.name}) is SLOWER than the fp32 baseline on "
            f"{runtime}: {chosen.latency_ms:.3f} ms vs {base.latency_ms:.3f} ms; "
            f"{slow_ops['summary']}"
        )
    for c in ok:
        if (
            c is not chosen and c.precision in INT8 and measure and c.latency_ms
            and base.latency_ms and c.latency_ms > base.latency_ms * SLOWER_MARGIN
        ):  # fmt: skip
            warnings.append(
                f"{c.name} is slower than fp32 on {runtime} here "
                f"({c.latency_ms:.3f} vs {base.latency_ms:.3f} ms)"
            )
    return {
        "baseline": base,
        "chosen": chosen,
        "candidates": cands,
        "before_stats": before_stats,
        "after_stats": after_stats,
        "prune_info": prune_info,
        "layer_errors": layer_errs,
        "recovery": recovery,
        "graph_opt": graph_info,
        "max_drop": max_drop,
        "met": met,
        "warnings": warnings,
        "slow_ops": slow_ops,
        "threads": threads or 1,
    }


def _slow_ops(
    base: Path, opt: Path, feed: np.ndarray, runtime: str, threads: int | None
) -> dict[str, Any]:
    """Which op types cost more in `opt` than in `base` (times, or counts for LiteRT)."""
    try:
        a = T.op_times(base, feed, runtime=runtime, threads=threads or 1)
        b = T.op_times(opt, feed, runtime=runtime, threads=threads or 1)
    except Exception as exc:  # noqa: BLE001 - profiling is diagnosis, not the result
        return {"summary": f"per-op profiling failed ({_first_line(exc)})", "ops": {}}
    keys = set(a["ops"]) | set(b["ops"])
    diff = {k: b["ops"].get(k, 0) - a["ops"].get(k, 0) for k in keys}
    worst = sorted((k for k in diff if diff[k] > 0), key=lambda k: -diff[k])[:5]
    if a["unit"] == "op count":
        words = ", ".join(f"{k} (+{diff[k]})" for k in worst)
        summary = f"ops added by quantization: {words or 'none'} (LiteRT gives no per-op times)"
    else:
        words = ", ".join(f"{k} (+{diff[k]:.3f} ms)" for k in worst)
        summary = f"ops responsible: {words or 'none stand out'}"
    return {
        "summary": summary,
        "unit": a["unit"],
        "ops": {k: round(float(diff[k]), 4) for k in worst},
    }


def host_note(prof: Any) -> str | None:
    arch = platform.machine()
    if not prof.runnable_here():
        return (
            f"profile {prof.name} targets {prof.arch} ({prof.device_label}); these numbers are "
            f"HOST MEASUREMENTS on this {arch} machine with the profile's runtime, not the target's"
        )
    return None
