"""`optimize()`: prune, convert, quantize each allowed precision, prove and measure each
candidate against the fp32 baseline, keep the best, and write it with its report."""

from __future__ import annotations

import json
import os
import platform
import shutil
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
from edgekit.outputs import atomic_dir, output_lock

INT8 = ("int8", "int8-float-fallback")
SLOWER_MARGIN = 1.03  # within 3% counts as "not slower" on a noisy shared machine
EVAL_BATCH = 64


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
    parity: Any = None  # edgekit.verify.Parity against the baseline
    accuracy_drop: float | None = None  # points vs baseline (or disagreement when unlabelled)
    latency: dict[str, Any] | None = None  # edgekit.bench statistics, in ms
    confusion: list[list[int]] | None = None  # rows: true class, columns: predicted
    meets_budget: bool = False
    error: str | None = None

    @property
    def latency_ms(self) -> float | None:
        """The median latency: what candidates are compared and chosen by."""
        return None if self.latency is None else float(self.latency["median"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "precision": self.precision,
            "kept_float": self.kept_float,
            "size_bytes": self.size_bytes,
            "gzip_bytes": self.gzip_bytes,
            "accuracy": _r(self.accuracy),
            "accuracy_drop": _r(self.accuracy_drop, 3),
            "parity": parity_dict(self.parity),
            "latency_ms": self.latency,
            "meets_budget": self.meets_budget,
            "error": self.error,
        }


def parity_dict(p: Any) -> dict[str, float | None] | None:
    """The report's three parity figures of an `edgekit.verify.Parity`."""
    if p is None:
        return None
    err = float(p.max_abs_error)
    return {
        "top1_agreement": None if p.top1_agreement is None else round(p.top1_agreement, 6),
        "max_abs_error": float(f"{err:.6g}") if np.isfinite(err) else None,
        "cosine": round(float(p.cosine), 6),
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


def _dataset_from(spec: Any, model: Any, **only: Any) -> Any:
    """A Dataset from a source string, a Dataset, or None. `only` (load_dataset's `splits`
    and `sample_train`) limits what is read and preprocessed."""
    from edgekit.data import Dataset, Preprocess, load_dataset

    if spec is None or isinstance(spec, Dataset):
        return spec
    pre = Preprocess.find_for(model.path)
    shape = _input_shape(model)
    try:
        if pre is not None:
            ds = load_dataset(str(spec), pre, **only)
        else:
            dims = [d for d in shape[1:]]
            image = len(dims) == 3 and all(isinstance(d, int) for d in dims)
            if image and dims[-1] in (1, 3):
                ds = load_dataset(str(spec), image_size=(dims[0], dims[1]), channels=dims[-1],
                                  normalize=False, **only)  # fmt: skip
            elif image and dims[0] in (1, 3):
                ds = load_dataset(str(spec), layout="nchw", image_size=(dims[1], dims[2]),
                                  channels=dims[0], normalize=False, **only)  # fmt: skip
            else:
                # A model without preprocess.json takes the data as it is stored.
                ds = load_dataset(str(spec), normalize=False, **only)
    except EdgekitError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad data argument
        raise DatasetError(f"cannot read calibration data {spec!r}: {_first_line(exc)}") from None
    want = tuple(d for d in shape[1:])
    got = tuple((ds.x_test if len(ds.x_test) else ds.x_train).shape[1:])
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
    fine_tune: bool = False,
) -> _Data:
    """Calibration and evaluation data. Only what is used is read: a sample of the training
    split for calibration and the test split for evaluation, unless `fine_tune` (pruning
    a Keras model) needs the whole training and validation splits."""
    from edgekit.inputs import generate_inputs

    rng = np.random.default_rng(seed)
    if calib_data is None:
        calib_data = _recipe_dataset(model.path)
    if fine_tune:
        cds = _dataset_from(calib_data, model)
    else:
        splits = ("train", "test") if eval_data is None else ("train",)
        cds = _dataset_from(calib_data, model, splits=splits, sample_train=calib_samples)
    eds = cds if eval_data is None else _dataset_from(eval_data, model, splits=("test",))
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


# --- conversion at fp32 ----------------------------------------------------------------


def _convert(src: Any, fmt: str, folder: Path, warnings: list[str]) -> Path:
    """`src` (a path, a Model, or an in-memory Keras model) as an fp32 `fmt` model in
    `folder`, through `edgekit.convert`. A conversion that runs but does not reproduce
    the source within fp32 tolerance is kept, and said: the candidates are judged
    against it, as they will be deployed from it."""
    from edgekit.convert import convert
    from edgekit.errors import VerificationError
    from edgekit.model import Model

    if not isinstance(src, str | os.PathLike | Model):
        folder.mkdir(parents=True, exist_ok=True)
        src.save(folder / "source.keras")  # a model built in memory (pruning) goes via a file
        src = folder / "source.keras"
    try:
        res = convert(src, fmt, folder / T.MODEL_FILE[fmt])
    except VerificationError as exc:
        res = convert(src, fmt, folder / T.MODEL_FILE[fmt], verify=False)
        why = str(exc).split("; pass --tolerance")[0]  # optimize has no such flags
        warnings.append(f"the fp32 {fmt} model is kept unverified: {why}")
    return Path(res.model.path)


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


def _fastest(pool: list[Candidate]) -> Candidate:
    """The fastest candidate; an earlier one (the profile's order of preference) wins when
    it is within SLOWER_MARGIN of it, so that a tie on a noisy machine does not flip the
    choice between near-identical models from run to run."""
    best = min(c.latency_ms if c.latency_ms is not None else 0.0 for c in pool)
    return next(c for c in pool if (c.latency_ms or 0.0) <= best * SLOWER_MARGIN)


def _drop(base: Candidate, c: Candidate, labelled: bool) -> float:
    if labelled and base.accuracy is not None and c.accuracy is not None:
        return 100.0 * (base.accuracy - c.accuracy)
    p = c.parity
    if p is None:
        return 100.0
    if p.top1_agreement is None:  # one score per sample, or outputs that did not compare
        return 0.0 if np.isfinite(p.max_abs_error) else 100.0
    return 100.0 * (1.0 - p.top1_agreement)


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

    data = _resolve_data(src, calib_data, eval_data, calib_samples, warnings, seed,
                         fine_tune=bool(prune) and src_fmt == "keras")  # fmt: skip
    n_threads, threads_from = _threads(threads, prof)
    # The lock makes a second run on `out` fail at once; atomic_dir builds the output
    # beside it and puts it in place only when everything succeeded, and refuses to
    # replace a folder edgekit did not write.
    with output_lock(out), atomic_dir(out) as tmp:
        work = tmp / ".work"
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
            max_drop=max_accuracy_drop, threads=n_threads, epochs=finetune_epochs,
            max_float_layers=max_float_layers, graph_opt=graph_opt, measure=measure,
            say=say,
        )  # fmt: skip
        chosen: Candidate = result["chosen"]
        _copy_model(chosen.path, tmp / T.MODEL_FILE[fmt])
        result["elapsed_s"] = round(time.time() - started, 1)
        rep = R.build_report(src=src, profile=prof, runtime=runtime, data=data,
                             threads_from=threads_from, **result)  # fmt: skip
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


def _threads(threads: int | None, prof: Any) -> tuple[int, str]:
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


def _copy_model(src: Path, dest: Path) -> None:
    """Copy a model's files (an OpenVINO .xml with its .bin) to `dest`'s name."""
    from edgekit.model import load

    for f in load(src).files:
        shutil.copyfile(f, dest.with_suffix(f.suffix))


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
    threads: int,
    epochs: int | None,
    max_float_layers: int,
    graph_opt: bool,
    measure: bool,
    say: Any,
) -> dict[str, Any]:
    from edgekit.optimize import QUANTIZER, get_pass

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
    base_path = src.path if src_fmt == fmt else _convert(src, fmt, work / "baseline", warnings)
    km = None
    if src_fmt == "keras":
        from edgekit.formats.keras import load_keras

        km = load_keras(src)
        before_stats = _weight_stats(km=km)
    elif src_fmt == "onnx":
        before_stats = _weight_stats(path=src.path, fmt="onnx")
    else:
        before_stats = {"params": src.param_count, "sparsity": None}
    # The TFLite converter quantizes while it converts, so it starts from the Keras model
    # or SavedModel; the other quantizers start from the fp32 baseline.
    if fmt != "tflite":
        base_src = base_path
    else:
        base_src = km if km is not None else src.path
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
            float_src = (
                pr.model
                if fmt == "tflite"
                else _convert(pr.model, fmt, work / "pruned_src", warnings)
            )
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
                    else _convert(pruned_file, fmt, work / "pruned_src" / "ov", warnings)
                )  # fmt: skip
            else:
                float_src = pruned_file
        else:
            raise UnsupportedModelError(
                f"edgekit cannot prune {src_fmt} models; prune the Keras or ONNX source."
            )

    # 3. reference outputs on eval data, computed once: every candidate is compared to them
    say("measuring the baseline's outputs")
    from edgekit.model import load
    from edgekit.verify import compare_outputs, reference_runner

    base_model = load(base.path)
    feeds = T.feeds(data.x_eval, base_model.signature.inputs[0], EVAL_BATCH)
    runner = reference_runner(base_model, runtime)
    reference = [runner.run(f) for f in feeds]
    del runner

    def accuracy(outputs: list[list[np.ndarray]], c: Candidate) -> float | None:
        """Top-1 accuracy from a model's raw first output on `feeds` (its confusion matrix
        kept on `c`): a quantized output's argmax is its dequantized one's (positive
        scale), and padding comes last."""
        if not data.labelled:
            return None
        sizes = [len(next(iter(f.values()))) for f in feeds]  # samples per feed
        scores = np.concatenate(
            [np.asarray(o[0]).reshape(n, -1) for o, n in zip(outputs, sizes, strict=True)]
        )
        pred = scores[: len(data.y_eval)].argmax(1)
        k = max(scores.shape[1], int(data.y_eval.max()) + 1)
        y = data.y_eval.astype(np.int64)
        c.confusion = np.bincount(y * k + pred, minlength=k * k).reshape(k, k).tolist()
        return float(np.mean(pred == data.y_eval))

    def evaluate(c: Candidate) -> Candidate:
        m = load(c.path)
        c.size_bytes, c.gzip_bytes = m.size_bytes, T.gzip_bytes(c.path)
        if c is base:
            c.accuracy = accuracy(reference, c)
            return c
        outputs: list[list[np.ndarray]] = []
        c.parity = compare_outputs(base_model, m, feeds, reference=reference,
                                   precision=c.precision, dst_runtime=runtime,
                                   collect=outputs)  # fmt: skip
        c.accuracy = accuracy(outputs, c)
        c.accuracy_drop = _drop(base, c, data.labelled)
        c.meets_budget = c.accuracy_drop <= max_drop + 1e-9
        return c

    evaluate(base)
    base.accuracy_drop = 0.0
    base.meets_budget = True

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
                    threads=threads,
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

    # 6. latency of the baseline and every candidate, interleaved, on the same eval samples
    if measure:
        say(f"measuring latency (edgekit.bench, interleaved, {threads} thread(s))")
        models = [base, *ok]
        for c, lat in zip(models, T.latencies([c.path for c in models], data.x_eval,
                                              runtime=runtime, threads=threads), strict=True):  # fmt: skip
            c.latency = lat
        warnings += _bench_warnings(models)

    # 7. choose
    meeting = [c for c in ok if c.meets_budget]
    explicit = quantize not in (None, "auto")
    if meeting:
        pool = meeting
        if explicit:
            same = [c for c in meeting if c.precision == (precisions[0])]
            pool = same or meeting
        chosen = _fastest(pool)
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
            f"{runtime}: {chosen.latency_ms:.4g} ms vs {base.latency_ms:.4g} ms; "
            f"{slow_ops['summary']}"
        )
    for c in ok:
        if (
            c is not chosen and c.precision in INT8 and measure and c.latency_ms
            and base.latency_ms and c.latency_ms > base.latency_ms * SLOWER_MARGIN
        ):  # fmt: skip
            warnings.append(
                f"{c.name} is slower than fp32 on {runtime} here "
                f"({c.latency_ms:.4g} vs {base.latency_ms:.4g} ms)"
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
        "threads": threads,
    }


def _bench_warnings(models: list[Candidate]) -> list[str]:
    """The bench harness's warnings, once: those of every run (the machine's) as they are,
    the others as one line naming the models (each run's are in its latency_ms)."""
    runs = [(c.name, (c.latency or {}).get("warnings") or []) for c in models]
    common = [w for w in runs[0][1] if all(w in ws for _, ws in runs)] if runs else []
    own = [name for name, ws in runs if set(ws) - set(common)]
    out = [f"latency: {w}" for w in common]
    if own:
        out.append(
            f"the latency harness warned about its runs of {', '.join(own)} "
            "(see latency_ms.warnings in report.json)"
        )
    return out


def _slow_ops(
    base: Path, opt: Path, feed: np.ndarray, runtime: str, threads: int
) -> dict[str, Any]:
    """Which op types cost more in `opt` than in `base` (times, or counts for LiteRT)."""
    try:
        a = T.op_times(base, feed, runtime=runtime, threads=threads)
        b = T.op_times(opt, feed, runtime=runtime, threads=threads)
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


def host_note(prof: Any, threads: int) -> str | None:
    """The warning that labels numbers measured here for a profile of another machine."""
    if prof.runnable_here():
        return None
    target = f"{prof.threads} thread(s)" if prof.threads else "its runtime's default threads"
    return (
        f"profile {prof.name} targets {prof.arch} ({prof.device_label}); these numbers are "
        f"HOST MEASUREMENTS on this {platform.machine()} machine with the profile's runtime "
        f"on {threads} thread(s) (the target runs {target}), not the target's"
    )
