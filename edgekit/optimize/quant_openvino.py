"""OpenVINO quantization with NNCF: int8 (presets, transformer model type, ignored
scope), fp16 weight compression, and accuracy-controlled int8.

The source is a float OpenVINO IR or an ONNX file (converted on the fly).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import UnsupportedModelError
from edgekit.optimize.base import LayerError, QuantOptions, require_precision

PRECISIONS = ("fp32", "fp16", "int8", "int8-float-fallback")
COMPUTE_TYPES = ("Convolution", "GroupConvolution", "MatMul", "ConvolutionBackpropData")
# Op types that int8-float-fallback keeps float: cheap ops whose int8 versions add
# re-quantization more than they save.
FALLBACK_FLOAT_TYPES = ("Add", "Multiply", "Subtract", "Concat", "AvgPool", "ReduceMean")


def read(src: Path | Any) -> Any:
    import openvino as ov

    if not isinstance(src, str | Path):
        return src
    src = Path(src)
    if src.suffix == ".xml":
        return ov.Core().read_model(str(src))
    return ov.convert_model(str(src))


def is_transformer(model: Any) -> bool:
    types = {op.get_type_name() for op in model.get_ops()}
    return "Softmax" in types and "MatMul" in types and "Convolution" not in types


def _dataset(calib: np.ndarray | None) -> Any:
    import nncf

    if calib is None or len(calib) == 0:
        raise UnsupportedModelError(
            "OpenVINO int8 quantization needs calibration samples; pass --calib-data."
        )
    return nncf.Dataset([np.asarray(calib[i : i + 1], np.float32) for i in range(len(calib))])


def _settings(model: Any, precision: str, opts: QuantOptions) -> dict[str, Any]:
    import nncf

    preset = (opts.preset or "performance").lower()
    kw: dict[str, Any] = {
        "preset": nncf.QuantizationPreset.MIXED
        if preset == "mixed"
        else nncf.QuantizationPreset.PERFORMANCE
    }
    if opts.model_type == "transformer" or (opts.model_type is None and is_transformer(model)):
        kw["model_type"] = nncf.ModelType.TRANSFORMER
    types = list(opts.keep_float_types)
    if precision == "int8-float-fallback":
        types += list(FALLBACK_FLOAT_TYPES)
    present = {op.get_type_name() for op in model.get_ops()}
    types = [t for t in dict.fromkeys(types) if t in present]
    names = list(opts.keep_float)
    if names or types:
        kw["ignored_scope"] = nncf.IgnoredScope(names=names, types=types, validate=False)
    return kw


def quantize_openvino(
    src: Path | Any,
    out: Path,
    precision: str,
    calib: np.ndarray | None = None,
    options: QuantOptions | None = None,
) -> Path:
    """Write `src` (float IR or ONNX) at `precision` as an IR at `out` (model.xml + .bin)."""
    import openvino as ov

    require_precision("OpenVINO", precision, PRECISIONS)
    opts = options or QuantOptions()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = read(src)
    if precision in ("fp32", "fp16"):
        ov.save_model(model, str(out), compress_to_fp16=precision == "fp16")
        return out
    import nncf

    q = nncf.quantize(
        model, _dataset(calib), subset_size=len(calib), **_settings(model, precision, opts)
    )
    ov.save_model(q, str(out), compress_to_fp16=False)
    return out


def quantize_with_accuracy_control(
    src: Path | Any,
    out: Path,
    calib: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    max_drop_points: float,
    options: QuantOptions | None = None,
) -> tuple[Path, list[str]]:
    """NNCF int8 that reverts the most sensitive layers to float until the accuracy
    drop on (x_val, y_val) is at most `max_drop_points`; returns the path and the
    layers kept float."""
    import nncf
    import openvino as ov

    opts = options or QuantOptions()
    model = read(src)

    def validate(compiled: Any, items: Any) -> float:
        hits = []
        for x, y in items:
            out = compiled(x)[0]
            hits.append(int(np.argmax(out.reshape(-1)) == y))
        return float(np.mean(hits))

    val = nncf.Dataset(
        [(x_val[i : i + 1].astype(np.float32), int(y_val[i])) for i in range(len(x_val))]
    )
    kw = _settings(model, "int8", opts)
    q = nncf.quantize_with_accuracy_control(
        model,
        calibration_dataset=_dataset(calib),
        validation_dataset=val,
        validation_fn=validate,
        max_drop=max_drop_points / 100.0,
        drop_type=nncf.DropType.ABSOLUTE,
        subset_size=len(calib),
        **kw,
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(q, str(out), compress_to_fp16=False)
    return out, unquantized_layers(q)


def _feeds_fq(node: Any) -> bool:
    """Whether the activation input of `node` comes through a FakeQuantize."""
    src = node.input_value(0).get_node()
    while src.get_type_name() in ("Convert", "Reshape"):
        src = src.input_value(0).get_node()
    return src.get_type_name() == "FakeQuantize"


def unquantized_layers(model: Any) -> list[str]:
    """Compute layers (conv, matmul) whose activations are not quantized."""
    return [
        op.get_friendly_name()
        for op in model.get_ops()
        if op.get_type_name() in COMPUTE_TYPES and not _feeds_fq(op)
    ]


def _outputs_by_name(model: Any, x: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Run `model` on each sample of `x` with the named layers' outputs exposed."""
    import openvino as ov

    by = {op.get_friendly_name(): op for op in model.get_ops()}
    found = [n for n in names if n in by]
    model.add_outputs([by[n].output(0) for n in found])
    # Compiled outputs follow model.outputs; find each layer's Result by its source node.
    index = {}
    for i, port in enumerate(model.outputs):
        src = port.get_node().input_value(0).get_node().get_friendly_name()
        index.setdefault(src, i)
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    res: dict[str, list[np.ndarray]] = {n: [] for n in found if n in index}
    for i in range(len(x)):
        r = compiled(x[i : i + 1].astype(np.float32))
        for n in res:
            res[n].append(np.asarray(r[compiled.outputs[index[n]]]))
    return {n: np.concatenate(v) for n, v in res.items()}


def layer_errors(
    src: Path | Any, calib: np.ndarray, options: QuantOptions | None = None, limit: int = 32
) -> list[LayerError]:
    """Per-layer int8 error: relative RMSE of each compute layer's output between the
    float model and the NNCF int8 model, run side by side on calibration samples."""
    import nncf

    samples = calib[:limit]
    opts = options or QuantOptions()
    float_model = read(src)
    layers = [
        (op.get_friendly_name(), op.get_type_name())
        for op in float_model.get_ops()
        if op.get_type_name() in COMPUTE_TYPES
    ]
    q = nncf.quantize(
        float_model.clone(), _dataset(samples), subset_size=len(samples),
        **_settings(float_model, "int8", opts),
    )  # fmt: skip
    names = [n for n, _ in layers]
    f_out = _outputs_by_name(float_model.clone(), samples, names)
    q_out = _outputs_by_name(q, samples, names)
    errors = []
    for name, op in layers:
        if name not in f_out or name not in q_out or f_out[name].shape != q_out[name].shape:
            continue
        ref, got = f_out[name].astype(np.float64), q_out[name].astype(np.float64)
        rmse = float(np.sqrt(np.mean((ref - got) ** 2)))
        errors.append(LayerError(name, op, rmse / (float(ref.std()) + 1e-12), "relative rmse"))
    return sorted(errors, key=lambda e: -e.error)


ValidateFn = Callable[[Any, Any], float]
