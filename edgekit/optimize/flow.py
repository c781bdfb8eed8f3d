"""The phases of one `optimize` run, in order: baseline (convert at fp32), prune, reference
outputs, quantize candidates (and verify each), keep worst layers float, measure, choose,
and say what is slower. Each phase reads and fills one `Run`; `run_flow` calls them.

Which pass does what comes from the pass table (`edgekit.optimize.passes.PASSES`), and
quantization from its backends (`edgekit.optimize.quantize`): no phase branches on a
format or runtime name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import edgekit.optimize._tools as T
from edgekit.errors import EdgekitError, InputError, UnsupportedModelError, first_line
from edgekit.optimize.candidates import (
    SLOWER_MARGIN,
    Candidate,
    accuracy_drop,
    bench_warnings,
    choose,
    rounded,
    verdict,
)
from edgekit.optimize.data import Data
from edgekit.optimize.passes import (
    INT8,
    PASSES,
    PassInfo,
    get_pass,
    in_memory,
    passes_for,
    quantizer_for,
)
from edgekit.vocab import FLOAT_PRECISIONS

EVAL_BATCH = 64


@dataclass
class Run:
    """One optimize run: its settings, then what each phase adds."""

    src: Any  # edgekit.model.Model to process (after a first conversion, if any)
    prof: Any  # edgekit.profiles.Profile
    runtime: str
    precisions: list[str]
    data: Data
    work: Path
    warnings: list[str]
    can_quantize: bool = True  # False: the quantizer cannot take this source (fp32 only)
    prune: float | None = None
    structured: bool = False
    auto: bool = True  # --quantize auto (or unset): alternatives are tried and measured
    inference: tuple[str, ...] = ()  # compute precisions the fp32 model is compiled in (bf16)
    max_drop: float = 1.0
    threads: int = 1
    epochs: int | None = None
    max_float_layers: int = 6
    graph_opt: bool = True
    measure: bool = True
    say: Callable[[str], None] = lambda msg: None
    # filled by the phases
    options: Any = None  # the backend's QuantOptions, from the profile
    km: Any = None  # the in-memory Keras source, when it is one
    base: Candidate | None = None
    quant_src: Any = None  # what the quantizer starts from
    float_model: Path | None = None  # the fp32 model in the profile's format
    before_stats: dict[str, Any] = field(default_factory=dict)
    after_stats: dict[str, Any] = field(default_factory=dict)
    prune_info: dict[str, Any] | None = None
    feeds: list[dict] = field(default_factory=list)
    reference: list[list[np.ndarray]] = field(default_factory=list)
    base_model: Any = None
    candidates: list[Candidate] = field(default_factory=list)
    graph_info: dict[str, Any] | None = None
    layer_errors: list[Any] = field(default_factory=list)
    recovery: Any = None
    chosen: Candidate | None = None
    met: bool = False
    slow_ops: dict[str, Any] | None = None
    selective: dict[str, Any] | None = None  # what int8-where-it-pays tried and kept

    @property
    def src_fmt(self) -> str:
        return str(self.src.format)

    @property
    def fmt(self) -> str:
        return self.prof.format

    @property
    def tag(self) -> str:
        return "pruned " if self.prune else ""

    def model_file(self, *parts: str) -> Path:
        """A path for a model of the profile's format under the work folder."""
        return self.work.joinpath(*parts) / T.MODEL_FILE[self.fmt]


def run_flow(run: Run) -> Run:
    """Every phase in order; returns `run`, filled."""
    from edgekit.optimize.quantize import backend

    run.options = backend(run.fmt).options_for(run.prof)
    baseline(run)
    prune(run)
    reference(run)
    make_candidates(run)
    int8_where_it_pays(run)
    recover(run)
    if not any(c.error is None for c in run.candidates):
        errs = "; ".join(f"{c.name}: {c.error}" for c in run.candidates)
        raise UnsupportedModelError(f"no candidate could be made for {run.prof.name}: {errs}")
    measure(run)
    place(run)
    choose_candidate(run)
    say_slower(run)
    say_fp16(run)
    return run


# --- baseline and pruning ----------------------------------------------------------------


def convert_fp32(src: Any, fmt: str, folder: Path, warnings: list[str]) -> Path:
    """`src` (a path, a Model, or an in-memory Keras model) as an fp32 `fmt` model in
    `folder`, through `edgekit.convert`. A conversion that runs but does not reproduce
    the source within fp32 tolerance is kept, and said: the candidates are judged
    against it, as they will be deployed from it."""
    from edgekit.convert import convert
    from edgekit.errors import VerificationError
    from edgekit.model import Model

    if not isinstance(src, str | os.PathLike | Model):
        folder.mkdir(parents=True, exist_ok=True)
        src.save(folder / "source.keras")  # a model built in memory goes via a file
        src = folder / "source.keras"
    try:
        res = convert(src, fmt, folder / T.MODEL_FILE[fmt])
    except VerificationError as exc:
        res = convert(src, fmt, folder / T.MODEL_FILE[fmt], verify=False)
        why = str(exc).split("; pass --tolerance")[0]  # optimize has no such flags
        warnings.append(f"the fp32 {fmt} model is kept unverified: {why}")
    return Path(res.model.path)


def weight_stats(km: Any = None, path: Path | None = None) -> dict[str, Any]:
    """Parameter count and fraction of exactly-zero weights of a Keras model or an ONNX
    file (else unknown)."""
    if km is not None:
        ws = [np.asarray(w) for w in km.get_weights()]
    elif path is not None and Path(path).suffix == ".onnx":
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


def baseline(run: Run) -> None:
    """The source in the profile's format at fp32 (what every candidate is judged against),
    and the float model the quantizer starts from."""
    run.say("converting the source to the profile's format (fp32 baseline)")
    src, fmt = run.src, run.fmt
    if run.src_fmt == fmt:
        base_path = src.path
    else:
        base_path = convert_fp32(src, fmt, run.work / "baseline", run.warnings)
    if in_memory(run.src_fmt):
        from edgekit.formats.keras import load_keras

        run.km = load_keras(src)  # the in-memory model that fine-tuning passes work on
        run.before_stats = weight_stats(km=run.km)
    elif run.src_fmt == "onnx":
        run.before_stats = weight_stats(path=src.path)
    else:
        run.before_stats = {"params": src.param_count, "sparsity": None}
    q = quantizer_for(fmt)
    # A quantizer that takes the profile's format starts from the baseline; one that
    # converts while it quantizes (TFLite) starts from the source.
    if q is not None and fmt in q.accepts:
        run.quant_src = base_path
    else:
        run.quant_src = run.km if run.km is not None else src
    run.float_model = Path(base_path)
    run.base = Candidate("baseline fp32", "fp32", Path(base_path))
    run.after_stats = dict(run.before_stats)


def prune_pass(src_fmt: str, structured: bool, name: str) -> PassInfo:
    """The prune pass for a `src_fmt` source, from the table; a user error naming the
    formats that can be pruned when none fits."""
    fits = [
        p for p in passes_for(src_fmt, "prune") if bool(p.extra.get("structured")) == structured
    ]
    if fits:
        return fits[0]
    if structured:
        takes = {f for p in PASSES.values() if p.extra.get("structured") for f in p.accepts}
        raise UnsupportedModelError(
            f"structured pruning rebuilds {' or '.join(sorted(takes))} models; {name} is "
            f"{src_fmt}, so use --prune without --structured (weight pruning)."
        )
    takes = sorted({f for p in PASSES.values() if p.kind == "prune" for f in p.accepts})
    raise UnsupportedModelError(
        f"edgekit cannot prune {src_fmt} models; prune the {' or '.join(takes)} source."
    )


def prune(run: Run) -> None:
    """The prune pass the source's format takes, when --prune asks for one."""
    if not run.prune:
        return
    run.say(f"pruning to {run.prune:.0%} ({'structured' if run.structured else 'magnitude'})")
    info = prune_pass(run.src_fmt, run.structured, run.src.path.name)
    folder = run.work / "pruned_src"
    if info.needs_data:
        from edgekit.optimize.prune_magnitude import FineTuneConfig

        d = run.data
        if not d.labelled:
            raise InputError(
                f"pruning a {run.src_fmt} model fine-tunes it, which needs labelled data; pass "
                "--calib-data (e.g. digits, npz:FILE, images:DIR)."
            )
        val = (d.x_val, d.y_val) if d.x_val is not None and len(d.x_val) else None
        cfg = FineTuneConfig(run.prune, d.x_train, d.y_train, val, run.epochs)
        source = run.km if run.km is not None else run.src
        res = get_pass(info.name).run(source, cfg, folder / f"pruned{run.src.path.suffix}")
        if res.model is not None:
            run.after_stats = weight_stats(km=res.model)
        else:  # a pass on the file reports its own counts
            run.after_stats = {"params": res.details.get("params_before"),
                               "sparsity": res.details.get("sparsity")}  # fmt: skip
    else:
        from edgekit.optimize.prune_weights import WeightPruneConfig

        res = get_pass(info.name).run(run.src, WeightPruneConfig(float(run.prune)),
                                      folder / run.src.path.name)  # fmt: skip
        if res.path.suffix == ".onnx":
            run.after_stats = weight_stats(path=res.path)
    run.warnings += res.warnings
    run.prune_info = {"method": info.name, "target_sparsity": run.prune, **res.details}
    q = quantizer_for(run.fmt)
    if q is not None and res.format in q.accepts and run.fmt not in q.accepts:
        # A quantizer that converts while it quantizes (TFLite) takes the pruned source.
        run.quant_src = res.model if res.model is not None else res.path
    else:
        pruned = res.path
        if res.format != run.fmt:
            pruned = convert_fp32(res.path, run.fmt, folder / run.fmt, run.warnings)
        run.float_model = run.quant_src = Path(pruned)


# --- verification ------------------------------------------------------------------------


def reference(run: Run) -> None:
    """The baseline's outputs on the eval samples, computed once: every candidate is
    compared to them."""
    run.say("measuring the baseline's outputs")
    from edgekit.bench.interleaved import sample_feeds
    from edgekit.model import load
    from edgekit.verify import reference_runner

    run.base_model = load(run.base.path)
    run.feeds = sample_feeds(run.data.x_eval, run.base_model.signature.inputs[0], EVAL_BATCH)
    runner = reference_runner(run.base_model, run.runtime)
    run.reference = [runner.run(f) for f in run.feeds]
    del runner
    verify(run, run.base)
    run.base.accuracy_drop = 0.0
    run.base.meets_budget = True


def _accuracy(run: Run, outputs: list[list[np.ndarray]], c: Candidate) -> float | None:
    """Top-1 accuracy from a model's raw first output on the eval feeds (its confusion
    matrix kept on `c`): a quantized output's argmax is its dequantized one's (positive
    scale), and padding comes last."""
    if not run.data.labelled:
        return None
    sizes = [len(next(iter(f.values()))) for f in run.feeds]  # samples per feed
    scores = np.concatenate(
        [np.asarray(o[0]).reshape(n, -1) for o, n in zip(outputs, sizes, strict=True)]
    )
    y = np.asarray(run.data.y_eval).astype(np.int64)
    pred = scores[: len(y)].argmax(1)
    k = max(scores.shape[1], int(y.max()) + 1)
    c.confusion = np.bincount(y * k + pred, minlength=k * k).reshape(k, k).tolist()
    return float(np.mean(pred == y))


def verify(run: Run, c: Candidate) -> Candidate:
    """Size, parity against the baseline, accuracy and budget of candidate `c`."""
    from edgekit.model import load
    from edgekit.verify import compare_outputs

    m = load(c.path)
    c.size_bytes, c.gzip_bytes = m.size_bytes, T.gzip_bytes(c.path)
    if c is run.base:
        c.accuracy = _accuracy(run, run.reference, c)
        return c
    outputs: list[list[np.ndarray]] = []
    c.parity = compare_outputs(run.base_model, m, run.feeds, reference=run.reference,
                               precision=c.precision, dst_runtime=run.runtime,
                               collect=outputs, dst_options=c.options)  # fmt: skip
    c.accuracy = _accuracy(run, outputs, c)
    c.accuracy_drop = accuracy_drop(run.base, c, run.data.labelled)
    c.meets_budget = c.accuracy_drop <= run.max_drop + 1e-9
    if (c.options or c.precision in FLOAT_PRECISIONS) and not c.parity.passed:
        # a float precision (fp16 weights, a bf16 compute precision) must reproduce the
        # floats at its tolerance, not only top-1
        c.meets_budget = False
    return c


# --- candidates --------------------------------------------------------------------------


def _quantized(run: Run, precision: str, folder: str, options: Any = None) -> Path:
    from edgekit.optimize.quantize import quantize

    return quantize(run.quant_src, run.fmt, precision, run.model_file("cand", folder),
                    run.data.calib, options or run.options)  # fmt: skip


def _graph_passes(run: Run, path: Path) -> Path:
    """The fp32 candidate through the format's graph passes (each kept only when it pays)."""
    from edgekit.optimize.graph_opt import GraphOptConfig

    for info in passes_for(run.fmt, "graph"):
        cfg = GraphOptConfig(run.data.x_eval[:16], threads=run.threads)
        res = get_pass(info.name).run(path, cfg, run.model_file("cand", f"fp32-{info.name}"))
        run.graph_info = {k: res.details[k] for k in
                          ("kept", "reason", "latency_before_ms", "latency_after_ms")}  # fmt: skip
        path = res.path
    return path


def _attempt(run: Run, c: Candidate, make: Callable[[], Any]) -> None:
    """`make()` fills candidate `c`, which joins the run's candidates whatever happens: a
    candidate that fails is recorded with its error (one sentence for a user error, the
    exception's type and first line otherwise), never fatal to the others."""
    try:
        make()
    except EdgekitError as exc:
        c.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - one failing candidate must not stop the rest
        c.error = f"{type(exc).__name__}: {first_line(exc)}"
    run.candidates.append(c)


def make_candidates(run: Run) -> None:
    """One candidate per precision (and the backend's alternatives in auto mode), each
    verified against the baseline; a precision that fails is recorded, not fatal."""
    for p in run.precisions:
        tag = f"{run.tag}{p}"
        run.say(f"making candidate: {tag}")
        c = Candidate(tag, p)

        def make(c: Candidate = c, p: str = p) -> None:
            c.path = _quantized(run, p, p) if run.can_quantize else run.float_model
            if p == "fp32" and run.graph_opt:
                c.path = _graph_passes(run, c.path)
            verify(run, c)

        _attempt(run, c, make)
    alternatives(run)
    inference_candidates(run)


def alternatives(run: Run) -> None:
    """The int8 backend's alternatives (auto mode), each verified like the others."""
    if not (run.can_quantize and run.auto and "int8" in run.precisions):
        return
    from edgekit.optimize.quantize import backend

    for i, (label, opts) in enumerate(backend(run.fmt).alternatives(run.options)):
        c = Candidate(f"{run.tag}{label}", "int8")

        def make(c: Candidate = c, i: int = i, opts: Any = opts) -> None:
            c.path = _quantized(run, "int8", "int8-alt" + (str(i) if i else ""), opts)
            verify(run, c)

        _attempt(run, c, make)


def inference_candidates(run: Run) -> None:
    """The fp32 model compiled in each inference precision the profile lists (auto mode):
    bf16 on an OpenVINO CPU. What the runtime computed in is read back from the compiled
    model; a precision it did not honour (a CPU without AVX-512 BF16 or AMX) is recorded
    as the one it ran, with a warning, never as the one asked for."""
    if not run.inference:
        return
    from edgekit.runtimes import get_runtime, open_session
    from edgekit.vocab import INFERENCE_PRECISION_NAMES

    fp32 = next((c for c in run.candidates if c.precision == "fp32" and c.error is None), None)
    path = fp32.path if fp32 is not None else run.float_model
    for ip in run.inference:
        name = INFERENCE_PRECISION_NAMES[ip]
        run.say(f"making candidate: fp32 computed in {name}")
        c = Candidate(f"{run.tag}{name} inference", name, path)

        def make(c: Candidate = c, ip: str = ip, name: str = name) -> None:
            c.options = get_runtime(run.runtime).precision_options(ip)
            session = open_session(path, run.runtime, threads=run.threads, options=c.options)
            c.ran = session.inference_precision()
            session.close()
            ran = (c.ran or {}).get("ran")
            if ran != ip or (c.ran or {}).get("hint") != ip:
                got = INFERENCE_PRECISION_NAMES.get(str(ran), str(ran))
                c.precision, c.name = got, f"{run.tag}fp32 (asked {name}, ran {got})"
                run.warnings.append(
                    f"{run.runtime} ran the {name} candidate in {ran} (read back from the "
                    f"compiled model): this machine cannot compute in {name}"
                )
            verify(run, c)

        _attempt(run, c, make)


def int8_where_it_pays(run: Run) -> None:
    """In auto mode, the int8 model with the op types whose int8 version is slower kept
    float (`edgekit.optimize.selective`), verified like any other candidate."""
    int8 = next((c for c in run.candidates if c.name == f"{run.tag}int8" and c.error is None),
                None)  # fmt: skip
    if not (run.can_quantize and run.auto and run.measure and int8 is not None):
        return
    from dataclasses import replace

    from edgekit.optimize.quantize import backend
    from edgekit.optimize.selective import NAME, where_it_pays

    run.say("int8 where it pays: per-op times of fp32 and int8, then each float island timed")
    counter = iter(range(1000))

    def make(types: tuple[str, ...]) -> Path:
        opts = replace(run.options, keep_float_types=(*run.options.keep_float_types, *types))
        return _quantized(run, "int8", f"int8-float-types{next(counter)}", opts)

    try:
        path, choice = where_it_pays(run.base.path, int8.path, make, run.data.x_eval,
                                     runtime=run.runtime, threads=run.threads,
                                     compute=backend(run.fmt).compute_types)  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - an extra candidate; its failure is said
        run.warnings.append(f"{NAME} could not be tried: {first_line(exc)}")
        return
    run.selective = {"kept_float": choice.kept, "why": choice.why, "tried": choice.tried,
                     "note": choice.note}  # fmt: skip
    if path is None:
        return
    c = Candidate(f"{run.tag}{NAME}", "int8", path, kept_float=choice.kept,
                  kept_float_why=choice.why)  # fmt: skip
    _attempt(run, c, lambda: verify(run, c))


def recover(run: Run) -> None:
    """Per-layer int8 error (for the report), and, when int8 misses the budget, the
    worst layers kept float one at a time until it meets it."""
    from edgekit.optimize.quantize import keep_worst_float, layer_errors

    cands = run.candidates
    int8 = next((c for c in cands if c.precision == "int8" and c.error is None), None)
    fp32 = next((c for c in cands if c.precision == "fp32" and c.error is None), None)
    needed = int8 is not None and not int8.meets_budget and run.max_float_layers > 0
    if needed and fp32 is not None and not fp32.meets_budget:
        needed = False
        run.warnings.append(
            f"{fp32.name} alone already drops {fp32.accuracy_drop:.2f} points, beyond the "
            f"budget: keeping int8 layers in float cannot recover that (prune less, or "
            f"fine-tune longer with --epochs)"
        )
    if int8 is not None:
        # Always measured for the report's worst layers (few samples: intermediate
        # activations of every layer are held in memory); more when the loop needs it.
        run.say("measuring per-layer quantization error")
        try:
            n = 16 if needed else 4
            run.layer_errors = layer_errors(run.quant_src, run.fmt, run.data.calib[:n], run.options)
        except Exception as exc:  # noqa: BLE001 - debugging is best effort, said in warnings
            run.warnings.append(
                f"per-layer quantization error could not be measured: {first_line(exc)}"
            )
    if not needed:
        return
    run.say("int8 misses the accuracy budget: keeping the worst layers in float")
    if not run.layer_errors:
        return
    counter = iter(range(1000))

    def make(names: tuple[str, ...]) -> Candidate:
        c = Candidate("", "int8", kept_float=list(names))
        c.path = _quantized(
            run, "int8", f"int8-keep{next(counter)}", run.options.with_float(*names)
        )
        return verify(run, c)

    run.recovery = keep_worst_float(run.layer_errors, make, lambda c: c.accuracy_drop,
                                    run.max_drop, run.max_float_layers)  # fmt: skip
    if run.recovery.best is not None:
        rc: Candidate = run.recovery.best.path
        n = len(rc.kept_float)
        rc.name = f"{run.tag}int8, {n} layer{'s' * (n != 1)} float"
        cands.append(rc)


# --- measurement and choice --------------------------------------------------------------


def measure(run: Run) -> None:
    """Latency of the baseline and every candidate in ONE interleaved measurement, on the
    same eval samples, and each candidate's ratio to the baseline from it (a candidate
    with the baseline's bytes is the baseline: measured once, 1.00x)."""
    if not run.measure:
        return
    from edgekit.bench.interleaved import measure_interleaved, ratios

    run.say(f"measuring latency (edgekit.bench, interleaved, {run.threads} thread(s))")
    models = [run.base, *(c for c in run.candidates if c.error is None)]
    lats = measure_interleaved([c.path for c in models], run.data.x_eval, runtime=run.runtime,
                               threads=run.threads, options=[c.options for c in models])  # fmt: skip
    for c, lat, ratio in zip(models, lats, ratios(lats), strict=True):
        c.latency, c.vs_baseline = lat, ratio
    run.warnings += bench_warnings(models)


def place(run: Run) -> None:
    """Where the target's compiler (Vela) places each candidate's ops: CPU fallbacks counted."""
    from edgekit.compilers import compiler_figures

    if run.prof.compiler is None or run.prof.compiler.name != "vela":
        return
    run.say(f"compiling each candidate with {run.prof.compiler.name} to count CPU ops")
    for c in run.candidates:
        fig = compiler_figures(run.prof, c.path) if c.error is None and c.path else None
        c.cpu_ops = None if fig is None else int(fig.get("cpu_ops", 0))


def choose_candidate(run: Run) -> None:
    """The choice (`edgekit.optimize.candidates.choose`), and every failure said."""
    ok = [c for c in run.candidates if c.error is None]
    explicit = None if run.auto else run.precisions[0]
    if not run.auto and run.inference:  # --quantize bf16: the fp32 model computed in bf16
        from edgekit.vocab import INFERENCE_PRECISION_NAMES

        explicit = INFERENCE_PRECISION_NAMES[run.inference[0]]
    # The baseline is what the user has already: auto never picks a slower model. It does
    # not compete where fp32 is not a precision of the target, where a compiler's CPU-op
    # count (not host latency) decides, or in a pruned run (a smaller model was asked for).
    competes = "fp32" in run.precisions and run.prof.compiler is None and not run.prune
    base = run.base if run.auto and run.measure and competes else None
    run.chosen, run.met, warning = choose(ok, run.max_drop, explicit, base)
    if warning:
        run.warnings.append(warning)
    for c in run.candidates:
        if c.error:
            run.warnings.append(f"candidate {c.name} failed: {c.error}")


def _slower(c: Candidate, base: Candidate) -> bool:
    """Measurably slower than the baseline: its ratio's interval lies above 1 (without a
    ratio, its median beyond SLOWER_MARGIN of the baseline's)."""
    if c.vs_baseline is not None:
        return verdict(c) == "slower"
    return bool(c.latency_ms and base.latency_ms and c.latency_ms > base.latency_ms * SLOWER_MARGIN)


def _times(c: Candidate, base: Candidate) -> str:
    r = c.vs_baseline
    ci = f", {r['level']:.0%} CI {r['low']:.3f}-{r['high']:.3f}x" if r else ""
    return f"{c.latency_ms:.4g} ms vs {base.latency_ms:.4g} ms{ci}"


def say_slower(run: Run) -> None:
    """Never slower without saying so: the chosen model (with the ops responsible), and
    each int8 or bf16 candidate slower than fp32; slower means the ratio's interval
    excludes 1."""
    base, chosen = run.base, run.chosen
    if not run.measure or base.latency_ms is None:
        return
    if chosen.latency_ms is not None and _slower(chosen, base):
        run.slow_ops = slow_ops(base.path, chosen.path, run.data.x_eval[:1], run.runtime,
                                run.threads)  # fmt: skip
        run.warnings.append(
            f"the optimized model ({chosen.name}) is SLOWER than the fp32 baseline on "
            f"{run.runtime}: {_times(chosen, base)}; {run.slow_ops['summary']}"
        )
    for c in run.candidates:
        lower = c.precision in INT8 or bool(c.options)  # int8, or a bf16 compute precision
        if c.error is None and c is not chosen and lower and _slower(c, base):
            run.warnings.append(
                f"{c.name} is slower than fp32 on {run.runtime} here ({_times(c, base)})"
            )


def say_fp16(run: Run) -> None:
    """No fp16 number passed off as the target's: fp16 compute on a device that is not here
    is said to be untried, and an fp16 candidate timed on a CPU without fp16 arithmetic is
    labelled as having run in fp32."""
    import platform

    from edgekit.deploy.host import host_placement
    from edgekit.devices import FP16_FLAGS, cpu

    prof = run.prof
    if "fp16" not in prof.precision and "f16" not in prof.inference_precision:
        return
    tried = [c.name for c in run.candidates if c.precision == "fp16" and c.error is None]
    away = host_placement(prof)[3] if prof.device != "CPU" else None
    if away:
        run.warnings.append(f"fp16 compute on the {prof.device_label} was left untried: {away}")
    if tried and run.measure and not FP16_FLAGS & set(cpu()["isa_features"]):
        run.warnings.append(
            f"{', '.join(tried)} was timed on this {platform.machine()} CPU, which has no fp16 "
            f"arithmetic: {run.runtime} ran it in fp32 (its float16 weights converted at "
            "load), so its latency is not the target's fp16 speed"
        )


def slow_ops(base: Path, opt: Path, feed: np.ndarray, runtime: str, threads: int) -> dict[str, Any]:
    """Which op types cost more in `opt` than in `base` (times, or counts for LiteRT)."""
    try:
        a = T.op_times(base, feed, runtime=runtime, threads=threads)
        b = T.op_times(opt, feed, runtime=runtime, threads=threads)
    except Exception as exc:  # noqa: BLE001 - profiling is diagnosis, not the result
        return {"summary": f"per-op profiling failed ({first_line(exc)})", "ops": {}}
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
        "ops": {k: rounded(diff[k], 4) for k in worst},
    }
