"""Parity: run the same inputs through two models and say whether they compute the same thing.

Each model runs on a Session from `edgekit.runtimes.open_session`, by default
on its reference runtime: Keras in-process through Keras, a SavedModel through
TensorFlow, every other format on its default runtime.
Inputs are generated from the source's signature (or given) and adapted to the
other model: matched by name, else by position; quantized I/O goes through
scale and zero point; an NCHW <-> NHWC transposition is undone. Outputs are
matched by position and compared in real (dequantized) values.

How close is close enough depends on the precision of the result, see
`TOLERANCES`; `tolerance=` overrides the absolute error bound.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.errors import EdgekitError, InputError, VerificationError
from edgekit.model import Model, Signature, TensorSpec

if TYPE_CHECKING:
    from edgekit.runtimes.base import Session

__all__ = [
    "TOLERANCES",
    "Parity",
    "Runner",
    "Tolerance",
    "compare_arrays",
    "compare_outputs",
    "fit_layout",
    "match_inputs",
    "model_precision",
    "real_values",
    "reference_runner",
    "repaired_tflite",
    "to_spec",
    "tolerance_for",
]


@dataclass(frozen=True)
class Tolerance:
    """Pass bounds: max |a-b| <= atol * max(1, max|a|), cosine >= min_cosine, top-1 agreement."""

    atol: float | None
    min_cosine: float
    min_top1: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Per precision of the model being checked. fp32: reordering of float sums only;
# fp16: 10-bit mantissa weights; int8: quantization noise, judged by direction and top-1.
# bf16 (a runtime computing in bf16: 7-bit mantissa activations, rounding at every layer,
# f32 accumulation): ~8x fp16's step, so a looser bound, still far tighter than int8's.
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(atol=1e-3, min_cosine=0.9999),
    "fp16": Tolerance(atol=1e-2, min_cosine=0.999),
    "bf16": Tolerance(atol=5e-2, min_cosine=0.995, min_top1=0.9),
    "int8": Tolerance(atol=None, min_cosine=0.98, min_top1=0.9),
}


def tolerance_for(precision: str, atol: float | None = None) -> Tolerance:
    """The default tolerance of a precision (int8 variants count as int8), `atol` replacing its bound."""
    key = "int8" if precision.startswith("int") or precision == "dynamic" else precision
    base = TOLERANCES.get(key, TOLERANCES["fp32"])
    if atol is None:
        return base
    if atol <= 0:
        raise InputError(f"--tolerance must be positive, got {atol}")
    return Tolerance(atol=atol, min_cosine=base.min_cosine, min_top1=base.min_top1)


@dataclass
class Parity:
    """How closely a result reproduces its source's outputs on the same inputs."""

    max_abs_error: float
    mean_abs_error: float
    cosine: float
    top1_agreement: float | None
    n_samples: int
    passed: bool
    tolerance: Tolerance
    precision: str = "fp32"
    reason: str = ""  # why it failed, in words; empty when passed
    outputs: list[dict[str, Any]] = field(default_factory=list)  # per-output figures

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tolerance"] = self.tolerance.to_dict()
        return d

    def summary(self) -> str:
        top1 = "" if self.top1_agreement is None else f", top-1 {self.top1_agreement:.0%}"
        return (
            f"max |err| {self.max_abs_error:.3g}, mean {self.mean_abs_error:.3g}, "
            f"cosine {self.cosine:.6f}{top1} over {self.n_samples} samples"
        )


# --- running a model on its own runtime -------------------------------------------


class Runner:
    """A Session whose `run` returns the outputs as a list, in order (what parity compares)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.signature = session.signature

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run once on feeds keyed by the model's own input names."""
        return list(self.session.run(feeds).values())

    def close(self) -> None:
        self.session.close()


def reference_runner(
    model: Model, runtime: str | None = None, options: Mapping[str, Any] | None = None
) -> Runner:
    """A runner for `model` on `runtime`, else on its reference runtime: Keras for Keras,
    TensorFlow for a SavedModel, the format's default runtime for the others
    (`edgekit.runtimes.reference_runtime`). A format that no target runtime reads
    (Keras) runs on its reference whatever `runtime` says. `options` are the runtime
    options it is opened with (an inference precision...).

    A TFLite file that LiteRT refuses only because a 1-D tensor (a bias) names a
    per-axis quantization axis other than 0 runs from a temporary copy with that
    axis set to 0, the only axis a 1-D tensor has; the file itself is never changed.
    """
    from edgekit.errors import UnsupportedModelError
    from edgekit.runtimes import DEFAULT_RUNTIME, open_session, reference_runtime

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    targeted = runtime is not None and str(model.format) in DEFAULT_RUNTIME
    name = runtime if targeted else reference_runtime(model)
    opts = dict(options) if options else None
    try:
        return Runner(open_session(model, name, options=opts))
    except UnsupportedModelError as exc:
        if str(model.format) != "tflite" or "quantized_dimension" not in str(exc):
            raise
        fixed = repaired_tflite(model)
        if fixed is None:
            raise
        return Runner(open_session(fixed, name, options=opts))


def repaired_tflite(model: Model, folder: os.PathLike | None = None) -> Model | None:
    """A copy of a TFLite model (in `folder`, else a temporary one) with the quantization axis
    of 1-D tensors set to 0 where it names another; None when nothing needed changing."""
    import struct
    import tempfile
    from pathlib import Path

    from edgekit.formats.tflite import FlatBuffer
    from edgekit.model import load

    data = bytearray(model.path.read_bytes())
    buf = FlatBuffer(bytes(data))
    changed = 0
    try:
        for sg in buf.tables(buf.root(), 2):
            for t in buf.tables(sg, 0):
                q = buf.indirect(t, 4)
                pos = None if q is None else buf.field_pos(q, 6)
                if pos is None:
                    continue
                rank = len(buf.scalars(t, 0, "i"))
                if rank == 1 and struct.unpack_from("<i", data, pos)[0] != 0:
                    struct.pack_into("<i", data, pos, 0)
                    changed += 1
    except Exception:  # a damaged file: leave the original error standing
        return None
    if not changed:
        return None
    where = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="edgekit-ref-"))
    path = where / model.path.name
    path.write_bytes(bytes(data))
    return load(path)


# --- adapting inputs and outputs between two signatures ------------------------------


def real_values(arr: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Dequantize when the tensor is quantized; otherwise float64 of the values."""
    q = spec.quantization
    if q is not None and len(q.scale) == 1 and np.dtype(spec.dtype).kind in "iu":
        zp = q.zero_point[0] if q.zero_point else 0
        return (arr.astype(np.float64) - zp) * q.scale[0]
    return arr.astype(np.float64)


def to_spec(real: np.ndarray, raw: np.ndarray, src: TensorSpec, dst: TensorSpec) -> np.ndarray:
    """Express an input (given as `raw` for `src`) in the dtype and quantization of `dst`."""
    dt = np.dtype(dst.dtype)
    if str(raw.dtype) == dst.dtype and src.quantization == dst.quantization:
        return raw
    q = dst.quantization
    if q is not None and len(q.scale) == 1 and dt.kind in "iu":
        zp = q.zero_point[0] if q.zero_point else 0
        info = np.iinfo(dt)
        return np.clip(np.round(real / q.scale[0] + zp), info.min, info.max).astype(dt)
    if dt.kind in "iub":
        return raw.astype(dt)
    return real.astype(dt)


def _inherit(dst: TensorSpec, src: TensorSpec) -> TensorSpec:
    """An integer tensor whose format records no scale (ONNX, OpenVINO) keeps its source's."""
    if dst.quantization is None and src.quantization is not None and dst.dtype == src.dtype:
        return TensorSpec(dst.name, dst.shape, dst.dtype, src.quantization)
    return dst


def fit_layout(arr: np.ndarray, shape: Sequence[Any] | None) -> np.ndarray:
    """Move the channel axis (NC... <-> N...C, as onnx2tf does at every rank from 3) when
    only that makes `arr` fit `shape`."""
    if shape is None or len(shape) != arr.ndim:
        return arr

    def fits(a: tuple[int, ...]) -> bool:
        return all(not isinstance(d, int) or d == s for d, s in zip(shape, a, strict=True))

    if fits(arr.shape) or arr.ndim < 3:
        return arr
    for t in (np.moveaxis(arr, -1, 1), np.moveaxis(arr, 1, -1)):
        if fits(t.shape):
            return t
    return arr


def _closest_layout(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """`out` fitted to `ref`'s shape; where both layouts fit (a channels-last (2, 3, 3) is also
    a channels-first one), the one nearer `ref`: the converter's layout is not recorded."""
    b = fit_layout(out, ref.shape)
    if b.ndim < 3 or b.shape != ref.shape or b.shape[1] != b.shape[-1] or b.dtype.kind != "f":
        return b
    moved = np.moveaxis(b, -1, 1)
    if moved.shape != ref.shape:
        return b
    dist = [float(np.nanmax(np.abs(x.astype(np.float64) - ref))) if ref.size else 0.0
            for x in (b, moved)]  # fmt: skip
    return moved if dist[1] < dist[0] else b


def _norm(name: str) -> str:
    name = name.split(":")[0]
    for prefix in ("serving_default_",):
        name = name.removeprefix(prefix)
    return name.lower()


def match_inputs(src: Signature, dst: Signature) -> list[int]:
    """For each destination input, the index of the source input that feeds it."""
    if len(src.inputs) != len(dst.inputs):
        raise VerificationError(
            f"the converted model has {len(dst.inputs)} inputs, its source {len(src.inputs)}"
        )
    src_names = [_norm(t.name) for t in src.inputs]
    order: list[int] = []
    for i, t in enumerate(dst.inputs):
        n = _norm(t.name)
        if n in src_names and src_names.index(n) not in order:
            order.append(src_names.index(n))
            continue
        hits = [j for j, s in enumerate(src_names) if (s in n or n in s) and j not in order]
        order.append(hits[0] if len(hits) == 1 else i)
    if sorted(order) != list(range(len(order))):
        order = list(range(len(dst.inputs)))
    return order


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))


def model_precision(model: Model) -> str:
    """'int8' when the model's I/O or weights are quantized integers, 'fp16' for float16, else 'fp32'."""
    sig = model.signature
    if any(t.quantization is not None for t in (*sig.inputs, *sig.outputs)):
        return "int8"
    try:
        ops = model.op_histogram
    except EdgekitError:
        return "fp32"
    names = " ".join(ops).lower()
    if any(k in names for k in ("quantize", "fakequant", "qlinear", "integer")):
        return "int8"
    return "fp32"


def compare_outputs(
    src_model: Model | str | os.PathLike,
    dst_model: Model | str | os.PathLike,
    feeds: Sequence[Mapping[str, np.ndarray]] | None = None,
    *,
    count: int = 4,
    seed: int = 0,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    precision: str | None = None,
    tolerance: float | None = None,
    reference: list[list[np.ndarray]] | None = None,
    src_runtime: str | None = None,
    dst_runtime: str | None = None,
    collect: list[list[np.ndarray]] | None = None,
    dst_options: Mapping[str, Any] | None = None,
) -> Parity:
    """Run the same inputs through `src_model` and `dst_model` and measure how far apart they are.

    `feeds` are keyed by the source's input names; when None, `count` seeded samples
    are generated (dynamic dims fixed by `input_shapes`, else batch 1). `precision`
    picks the default tolerance (the stricter of source and result when None);
    `tolerance` overrides the absolute bound. `reference`, when given, is the
    source's outputs for `feeds` (saves re-running the source); `collect`, when given,
    receives the result's raw outputs per feed (saves re-running the result to score it).
    `dst_options` are the runtime options the result runs with (a bf16 inference precision).
    Returns a Parity; it never raises on a mismatch, callers decide (`Parity.passed`).
    """
    from edgekit.inputs import generate_inputs
    from edgekit.model import load

    src = src_model if isinstance(src_model, Model) else load(src_model)
    dst = dst_model if isinstance(dst_model, Model) else load(dst_model)
    if feeds is None:
        feeds = generate_inputs(src, count=count, seed=seed, shapes=input_shapes)
    feeds = list(feeds)
    if precision is None:
        ps = {model_precision(src), model_precision(dst)}
        precision = "int8" if "int8" in ps else "fp32"
    tol = tolerance_for(precision, tolerance)
    if reference is None:
        ref_runner = reference_runner(src, src_runtime)
        reference = [ref_runner.run(f) for f in feeds]
    dst_runner = reference_runner(dst, dst_runtime, dst_options)
    ssig, dsig = src.signature, dst_runner.signature
    order = match_inputs(ssig, dsig)

    got: list[list[np.ndarray]] = []
    for f in feeds:
        dfeeds = {}
        for dspec, j in zip(dsig.inputs, order, strict=True):
            sspec = ssig.inputs[j]
            dspec = _inherit(dspec, sspec)
            raw = np.asarray(f[sspec.name])
            arr = to_spec(real_values(raw, sspec), raw, sspec, dspec)
            dfeeds[dspec.name] = fit_layout(arr, dspec.shape)
        got.append(dst_runner.run(dfeeds))
    if collect is not None:
        collect.extend(got)
    return _measure(reference, got, ssig, dsig, tol, precision, len(feeds))


def compare_arrays(
    reference: list[list[np.ndarray]],
    got: list[list[np.ndarray]],
    signature: Signature,
    *,
    precision: str = "fp32",
    tolerance: float | None = None,
) -> Parity:
    """Parity of outputs already computed by one model (`signature`) run twice, e.g. here and
    on another machine: `reference` and `got` hold one list of outputs per feed, in order."""
    tol = tolerance_for(precision, tolerance)
    return _measure(reference, got, signature, signature, tol, precision, len(reference))


def _measure(
    reference: list[list[np.ndarray]],
    got: list[list[np.ndarray]],
    ssig: Signature,
    dsig: Signature,
    tol: Tolerance,
    precision: str,
    n: int,
) -> Parity:
    n_out = len(reference[0]) if reference else 0
    if got and len(got[0]) != n_out:
        return Parity(np.inf, np.inf, 0.0, None, n, False, tol, precision,
                      f"the result has {len(got[0])} outputs, its source {n_out}")  # fmt: skip
    a_all, b_all, per_output = [], [], []
    top_hits, top_total = 0, 0
    reason = ""
    for k in range(n_out):
        sspec = ssig.outputs[k] if k < len(ssig.outputs) else TensorSpec("?", None, "float32")
        dspec = dsig.outputs[k] if k < len(dsig.outputs) else TensorSpec("?", None, "float32")
        dspec = _inherit(dspec, sspec)
        a_k, b_k = [], []
        for ref, out in zip(reference, got, strict=True):
            a = real_values(np.asarray(ref[k]), sspec)
            b = real_values(_closest_layout(np.asarray(out[k]), a), dspec)
            if b.shape != a.shape and b.size == a.size:
                b = b.reshape(a.shape)
            if b.shape != a.shape:
                return Parity(np.inf, np.inf, 0.0, None, n, False, tol, precision,
                              f"output {k} has shape {list(b.shape)}, its source "
                              f"{list(a.shape)}")  # fmt: skip
            if a.ndim >= 2 and a.shape[-1] > 1:
                top_hits += int(np.sum(a.argmax(-1) == b.argmax(-1)))
                top_total += int(np.prod(a.shape[:-1]))
            a_k.append(a.ravel())
            b_k.append(b.ravel())
        a_cat, b_cat = np.concatenate(a_k), np.concatenate(b_k)
        err = np.abs(a_cat - b_cat)
        per_output.append({
            "index": k,
            "name": sspec.name,
            "max_abs_error": float(err.max()) if err.size else 0.0,
            "cosine": _cosine(a_cat, b_cat),
            "max_abs_reference": float(np.abs(a_cat).max()) if a_cat.size else 0.0,
        })  # fmt: skip
        a_all.append(a_cat)
        b_all.append(b_cat)
    a_cat = np.concatenate(a_all) if a_all else np.zeros(0)
    b_cat = np.concatenate(b_all) if b_all else np.zeros(0)
    if not np.all(np.isfinite(b_cat)) and np.all(np.isfinite(a_cat)):
        return Parity(np.inf, np.inf, 0.0, None, n, False, tol, precision,
                      "the result produced NaN or infinite values", per_output)  # fmt: skip
    err = np.abs(a_cat - b_cat)
    max_err = float(np.nanmax(err)) if err.size else 0.0
    mean_err = float(np.nanmean(err)) if err.size else 0.0
    cos = min((o["cosine"] for o in per_output), default=1.0)
    top1 = top_hits / top_total if top_total else None
    passed = True
    if tol.atol is not None:
        for o in per_output:
            bound = tol.atol * max(1.0, o["max_abs_reference"])
            if o["max_abs_error"] > bound:
                passed = False
                reason = (f"output {o['index']} differs by up to {o['max_abs_error']:.3g}, "
                          f"beyond the {precision} tolerance {bound:.3g}")  # fmt: skip
                break
    if passed and cos < tol.min_cosine:
        passed = False
        reason = f"cosine similarity {cos:.6f} is below the {precision} bound {tol.min_cosine}"
    if passed and tol.min_top1 is not None and top1 is not None and top1 < tol.min_top1:
        passed = False
        reason = f"top-1 agreement {top1:.0%} is below the {precision} bound {tol.min_top1:.0%}"
    return Parity(max_err, mean_err, cos, top1, n, passed, tol, precision, reason, per_output)
