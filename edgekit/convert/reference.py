"""The source's outputs that a conversion is checked against, and which runtime produced them.

Every format runs on its own runtime (`edgekit.verify.reference_runner`). An ONNX
source has a chain, because ONNX Runtime no longer implements old opsets
(Gemm-6, Upsample-7, ...):

1. ONNX Runtime on the source;
2. else the ONNX reference evaluator (`onnx.reference`, the specification's own
   implementation) on the source, confirmed where possible by ONNX Runtime on the
   source upgraded with `onnx.version_converter` (when the two disagree, neither
   is trusted);
3. else ONNX Runtime on the upgraded source, itself checked against the reference
   evaluator on the same inputs (the upgraded graph is one the evaluator may run).

`Reference.runtime` says which one was used. When none runs, `ReferenceUnavailable`
says why each one failed; a caller never treats that as verified.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError, VerificationError
from edgekit.model import Model

# The opset the chain upgrades an old source to: one every supported ONNX Runtime runs.
UPGRADE_OPSET = 17
# The absolute error bound (scaled by max(1, |reference|)) a float64 source's result must meet.
FP64_ATOL = 1e-9

Feeds = Mapping[str, np.ndarray]


class ReferenceUnavailable(VerificationError):
    """No reference runtime can run the source, so nothing made from it can be verified."""


@dataclass
class Reference:
    """The source's outputs per feed, and the runtime that computed them."""

    feeds: list[dict[str, np.ndarray]]
    outputs: list[list[np.ndarray]]
    runtime: str  # "onnxruntime", "onnx-reference", "onnxruntime (opset 17 upgrade)", ...
    notes: list[str] = field(default_factory=list)  # why earlier references were not used


def _run(model: Model, feeds: Sequence[Feeds], runtime: str | None) -> list[list[np.ndarray]]:
    from edgekit.verify import reference_runner

    runner = reference_runner(model, runtime)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [runner.run(f) for f in feeds]


def _agree(a: list[list[np.ndarray]], b: list[list[np.ndarray]]) -> str | None:
    """None when two runs of the same graph agree to fp32 tolerance; else how they differ."""
    from edgekit.verify import TOLERANCES

    atol = TOLERANCES["fp32"].atol or 1e-3
    for x_outs, y_outs in zip(a, b, strict=True):
        if len(x_outs) != len(y_outs):
            return f"{len(y_outs)} outputs, not {len(x_outs)}"
        for k, (x, y) in enumerate(zip(x_outs, y_outs, strict=True)):
            x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
            if x.shape != y.shape:
                return f"output {k} has shape {list(y.shape)}, not {list(x.shape)}"
            bound = atol * max(1.0, float(np.abs(x).max()) if x.size else 0.0)
            err = float(np.nanmax(np.abs(x - y))) if x.size else 0.0
            if err > bound or np.isnan(y).sum() != np.isnan(x).sum():
                return f"output {k} differs by up to {err:.3g}"
    return None


def check_precision(
    src: Model, precision: str, tolerance: float | None
) -> tuple[str, float | None]:
    """The precision and absolute bound a result of `src` is checked at.

    A float64 model must come back in float64: a runtime that computes it in float32
    (OpenVINO's CPU does) overflows beyond 3.4e38 and drops digits, which small
    generated inputs would hide under the float32 bound. A given `tolerance` wins.
    """
    sig = src.signature
    if (
        precision == "fp32"
        and tolerance is None
        and any(t.dtype == "float64" for t in (*sig.inputs, *sig.outputs))
    ):
        return "fp64", FP64_ATOL
    return precision, tolerance


# What a float64 source's result is compared at when the target computes in float32.
FP64_AS_FP32 = "source is float64; target computes float32; compared at float32 tolerance"


def computes_float32(result: Model) -> bool:
    """Whether `result`'s runtime computes a float64 graph in float32.

    OpenVINO's IR keeps f64, but its CPU plugin inserts Converts to f32 and runs every
    layer there: its compiled runtime model says so, layer by layer. A model of another
    format computes in float64 where its outputs are float64.
    """
    if str(result.format) != "openvino":
        return not any(t.dtype == "float64" for t in result.signature.outputs)
    import openvino as ov

    core = ov.Core()
    try:
        compiled = core.compile_model(str(result.path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    except Exception:  # noqa: BLE001 - it does not compile: verification will say so
        return False
    layers = [op.get_rt_info() for op in compiled.get_runtime_model().get_ordered_ops()]
    compute = [ri["runtimePrecision"].astype(str) for ri in layers
               if ri["layerType"].astype(str) not in ("Input", "Output", "Convert")]  # fmt: skip
    return bool(compute) and "f64" not in compute


def opset_of(model: Model) -> int | None:
    """The default-domain opset an ONNX model imports, or None."""
    import onnx

    proto = onnx.load(str(model.path), load_external_data=False)
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)


def upgraded(model: Model, opset: int, folder: Path) -> Model:
    """`model` converted to `opset` by `onnx.version_converter`, written in `folder`."""
    from edgekit.convert.graph import EdgeOptions
    from edgekit.convert.onnx_opset import run as change_opset
    from edgekit.model import load

    return load(change_opset(model, folder / "upgraded.onnx", EdgeOptions(opset=opset)))


def reference_outputs(src: Model, feeds: Sequence[Feeds]) -> Reference:
    """The source's outputs on `feeds`, from the first reference that runs it.

    Raises ReferenceUnavailable naming each reference's reason when none does.
    """
    feeds = [dict(f) for f in feeds]
    try:
        return Reference(feeds, _run(src, feeds, None), _default_name(src))
    except EdgekitError as exc:
        if str(src.format) != "onnx":
            raise ReferenceUnavailable(_short(exc, src)) from None
        ort_error = _short(exc, src)
    return _onnx_chain(src, feeds, ort_error)


def _onnx_chain(src: Model, feeds: list[dict[str, np.ndarray]], ort_error: str) -> Reference:
    notes = [f"ONNX Runtime cannot run the source ({ort_error})"]
    with tempfile.TemporaryDirectory(prefix="edgekit-ref-") as tmp:
        up, up_error = None, None
        try:
            current = opset_of(src)
            if current is not None and current < UPGRADE_OPSET:
                up = upgraded(src, UPGRADE_OPSET, Path(tmp))
            else:
                up_error = f"the source is already at opset {current}"
        except EdgekitError as exc:
            up_error = _short(exc, src)
        ort_up, ort_up_error = None, None
        if up is not None:
            try:
                ort_up = _run(up, feeds, "onnxruntime")
            except EdgekitError as exc:
                ort_up_error = _short(exc, up)
        upgrade = f"onnxruntime (opset {UPGRADE_OPSET} upgrade)"
        try:
            spec = _run(src, feeds, "onnx-reference")
        except EdgekitError as exc:
            spec_error = _short(exc, src)
        else:
            if ort_up is not None:
                differ = _agree(spec, ort_up)
                if differ is not None:
                    # One of the two is wrong (the evaluator ignores some legacy attributes,
                    # such as Add-6's broadcast axis), and nothing says which: no reference.
                    raise ReferenceUnavailable(
                        f"the references disagree: ONNX Runtime cannot run the source "
                        f"({ort_error}), and the ONNX reference evaluator and {upgrade} "
                        f"differ on it ({differ})"
                    )
                notes.append(f"confirmed by {upgrade}")
            return Reference(feeds, spec, "onnx-reference", notes)
        notes.append(f"the ONNX reference evaluator cannot run the source ({spec_error})")
        if ort_up is None:
            why = up_error or ort_up_error
            raise ReferenceUnavailable(
                f"no reference runs the source: ONNX Runtime ({ort_error}), the ONNX reference "
                f"evaluator ({spec_error}), and ONNX Runtime on the opset {UPGRADE_OPSET} "
                f"upgrade ({why})"
            )
        # The upgraded graph is checked by the specification on the same inputs before it counts.
        try:
            check = _run(up, feeds, "onnx-reference")
        except EdgekitError as exc:
            raise ReferenceUnavailable(
                f"no checked reference runs the source: ONNX Runtime ({ort_error}) and the ONNX "
                f"reference evaluator ({spec_error}) cannot, and {upgrade} runs but cannot be "
                f"checked ({_short(exc, up)})"
            ) from None
        differ = _agree(check, ort_up)
        if differ is not None:
            raise ReferenceUnavailable(
                f"no reference runs the source: ONNX Runtime ({ort_error}) and the ONNX reference "
                f"evaluator ({spec_error}) cannot, and {upgrade} disagrees with the reference "
                f"evaluator on the upgrade ({differ})"
            )
        notes.append("checked against the ONNX reference evaluator on the upgrade")
        return Reference(feeds, ort_up, upgrade, notes)


def _default_name(model: Model) -> str:
    from edgekit.runtimes import DEFAULT_RUNTIME

    fmt = str(model.format)
    return {"keras": "keras", "savedmodel": "tensorflow"}.get(fmt, DEFAULT_RUNTIME.get(fmt, fmt))


def _short(exc: BaseException, model: Model) -> str:
    return str(exc).replace(f"{model.path}: ", "").rstrip(".")
