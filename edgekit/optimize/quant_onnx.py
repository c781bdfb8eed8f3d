"""ONNX Runtime post-training quantization: dynamic, static QDQ or QOperator, fp16.

``quant_pre_process`` (shape inference and graph cleanup) runs first. Static
quantization calibrates with a ``CalibrationDataReader`` over the calibration
samples (MinMax, Entropy or Percentile). Types follow the CPU (see ``cpu_types``);
in ``optimize``'s auto mode the other signedness is also tried and measured.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgekit.errors import UnsupportedModelError
from edgekit.optimize.base import LayerError, QuantOptions, require_precision

PRECISIONS = ("fp32", "dynamic", "fp16", "int8", "int8-float-fallback", "int16x8")
# Ops worth int8 kernels; "int8-float-fallback" quantizes only these.
COMPUTE_OPS = ("Conv", "MatMul", "Gemm", "ConvTranspose")
ACTIVATIONS = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid"}


def has_vnni() -> bool:
    from edgekit.devices import cpu

    feats = set(cpu()["isa_features"])
    return bool(feats & {"avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"})


def cpu_types(options: QuantOptions) -> tuple[str, str, bool]:
    """(activation type, weight type, reduce_range) fast on this CPU unless options say.

    x86: uint8 activations with int8 weights (U8S8) are what ONNX Runtime's MLAS kernels
    run natively (VNNI's vpdpbusd is u8 x s8); measured here with ORT 1.32 on an AVX-512
    VNNI CPU, U8S8 QDQ MobileNetV2 ran 2.2-2.3x fp32, S8S8 QDQ 1.3x (benchmarks/README.md,
    Optimize). Without VNNI, u8s8 goes through vpmaddubsw, which can saturate, so weights
    keep 7 bits (reduce_range). Arm: S8S8 (sdot / i8mm).
    """
    vnni = has_vnni()
    arm = _is_arm()
    act = options.activation_type or ("int8" if arm else "uint8")
    weight = options.weight_type or "int8"
    if options.reduce_range is not None:
        reduce = options.reduce_range
    else:
        reduce = not vnni and not arm
    return act, weight, reduce


def _is_arm() -> bool:
    import platform

    return platform.machine().lower() in ("aarch64", "arm64") or platform.machine().startswith(
        "armv"
    )


def _qtype(name: str) -> object:
    from onnxruntime.quantization import QuantType

    return {
        "int8": QuantType.QInt8,
        "uint8": QuantType.QUInt8,
        "int16": QuantType.QInt16,
        "uint16": QuantType.QUInt16,
    }[name]


class _Reader:
    """A CalibrationDataReader that feeds one sample at a time."""

    def __init__(self, input_name: str, samples: np.ndarray) -> None:
        self.input_name = input_name
        self.samples = samples
        self.i = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.samples):
            return None
        x = np.asarray(self.samples[self.i : self.i + 1], dtype=np.float32)
        self.i += 1
        return {self.input_name: x}

    def rewind(self) -> None:
        self.i = 0


def reader(src: Path, samples: np.ndarray) -> _Reader:
    import onnx

    m = onnx.load(str(src), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    name = next(i.name for i in m.graph.input if i.name not in inits)
    # Wrap so it is an instance of ORT's abstract reader (quantize_static checks that).
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(_Reader, CalibrationDataReader):
        pass

    return Reader(name, samples)


def pre_process(src: Path, out: Path) -> Path:
    """``quant_pre_process`` (symbolic shape inference + ORT basic optimizations)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(src), str(out), skip_symbolic_shape=False)
    except Exception:  # noqa: BLE001 - symbolic shape inference fails on some graphs; retry
        try:
            quant_pre_process(str(src), str(out), skip_symbolic_shape=True)
        except Exception:  # noqa: BLE001 - pre-processing is an improvement, not a requirement
            shutil.copyfile(src, out)
    return out


def _calib_method(name: str) -> object:
    from onnxruntime.quantization import CalibrationMethod

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    try:
        return methods[name.lower()]
    except KeyError:
        raise UnsupportedModelError(
            f"unknown calibration method {name!r}; choose MinMax, Entropy or Percentile."
        ) from None


def _graph(src: Path) -> tuple[dict, dict, dict]:
    """(node name -> node, tensor -> producing node name, tensor -> consumer node names)."""
    import onnx

    nodes = {n.name: n for n in onnx.load(str(src), load_external_data=False).graph.node}
    producer = {o: n.name for n in nodes.values() for o in n.output}
    consumers: dict[str, list[str]] = {}
    for n in nodes.values():
        for i in n.input:
            consumers.setdefault(i, []).append(n.name)
    return nodes, producer, consumers


def float_region(src: Path, names: tuple[str, ...]) -> list[str]:
    """Nodes to exclude so that each named compute node runs float *and* its output tensor
    is never quantized: the node, plus everything downstream of it up to and including the
    next compute nodes (a quantized consumer would re-quantize that tensor)."""
    nodes, _, consumers = _graph(src)
    out: list[str] = []
    for name in names:
        if name not in nodes:
            continue
        todo, seen = [name], set()
        while todo:
            n = todo.pop()
            if n in seen:
                continue
            seen.add(n)
            out.append(n)
            if n != name and nodes[n].op_type in COMPUTE_OPS:
                continue
            for o in nodes[n].output:
                todo.extend(consumers.get(o, []))
    return list(dict.fromkeys(out))


def compute_nodes(src: Path) -> list[tuple[str, str]]:
    import onnx

    m = onnx.load(str(src), load_external_data=False)
    return [(n.name, n.op_type) for n in m.graph.node]


def quantize_onnx(
    src: Path,
    out: Path,
    precision: str,
    calib: np.ndarray | None = None,
    options: QuantOptions | None = None,
) -> Path:
    """Write `src` (a float ONNX file) quantized to `precision` at `out`."""
    require_precision("ONNX Runtime", precision, PRECISIONS)
    opts = options or QuantOptions()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if precision == "fp32":
        shutil.copyfile(src, out)
        return out
    if precision == "fp16":
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        m = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
        onnx.save(m, str(out))
        return out
    from onnxruntime.quantization import QuantFormat, quantize_dynamic, quantize_static

    with tempfile.TemporaryDirectory(prefix="ek-ortq-") as tmp:
        pre = pre_process(Path(src), Path(tmp) / "pre.onnx")
        per_channel = opts.per_channel if opts.per_channel is not None else True
        if precision == "dynamic":
            quantize_dynamic(
                str(pre),
                str(out),
                weight_type=_qtype(opts.weight_type or "int8"),
                per_channel=per_channel,
                nodes_to_exclude=list(opts.keep_float),
            )
            return out
        if calib is None or len(calib) == 0:
            raise UnsupportedModelError(
                "ONNX static quantization needs calibration samples; pass --calib-data."
            )
        act, weight, reduce = cpu_types(opts)
        if precision == "int16x8":
            act, weight, reduce = "int16", "int8", False
        fmt = (opts.quant_format or "QDQ").upper()
        if precision == "int16x8" or fmt not in ("QDQ", "QOPERATOR"):
            fmt = "QDQ"
        op_types = None
        if precision == "int8-float-fallback":
            op_types = list(COMPUTE_OPS)
        excluded = float_region(pre, opts.keep_float)
        if opts.keep_float_types:
            excluded += [n for n, t in compute_nodes(pre) if t in opts.keep_float_types]
        quantize_static(
            str(pre),
            str(out),
            reader(pre, calib),
            quant_format=QuantFormat.QDQ if fmt == "QDQ" else QuantFormat.QOperator,
            per_channel=per_channel,
            reduce_range=reduce,
            activation_type=_qtype(act),
            weight_type=_qtype(weight),
            calibrate_method=_calib_method(opts.calibrate_method),
            nodes_to_exclude=excluded,
            op_types_to_quantize=op_types,
            # int16 activations centred on zero; int8 ones keep ORT's default asymmetric
            # range: symmetric S8S8 MobileNetV2 ran 0.94x fp32 here, asymmetric 1.3x.
            extra_options={"ActivationSymmetric": act == "int16"},
        )
    return out


def layer_errors(
    src: Path, calib: np.ndarray, options: QuantOptions | None = None, limit: int = 32
) -> list[LayerError]:
    """Per-node int8 error with ``qdq_loss_debug``: for each compute node, the noise/signal
    ratio (from the SQNR) between its output in the float and in the QDQ model (bigger is
    worse)."""
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    samples = calib[:limit]
    with tempfile.TemporaryDirectory(prefix="ek-ortdbg-") as tmp:
        t = Path(tmp)
        pre = pre_process(Path(src), t / "pre.onnx")
        q = quantize_onnx(pre, t / "q.onnx", "int8", samples, options)
        modify_model_output_intermediate_tensors(str(pre), str(t / "fa.onnx"))
        modify_model_output_intermediate_tensors(str(q), str(t / "qa.onnx"))
        fa = collect_activations(str(t / "fa.onnx"), reader(pre, samples))
        qa = collect_activations(str(t / "qa.onnx"), reader(pre, samples))
        errs = compute_activation_error(create_activation_matching(qa, fa))
        nodes, producer, consumers = _graph(pre)
    # Blame the compute node upstream of each damaged tensor: an error after a Relu or a
    # reshape is made by the conv or matmul before it. A tensor read only by Relu/Clip is
    # skipped: its QDQ is fused with the activation, so clipping looks like noise there.
    worst: dict[str, float] = {}
    for tensor, e in errs.items():
        # xmodel_err: float model vs quantized model at this tensor. (qdq_err, the tensor's
        # own round trip, misleads where ORT folds a Relu into the QDQ range.)
        sqnr = e.get("xmodel_err", e.get("qdq_err"))
        if tensor not in producer or sqnr is None or not np.isfinite(sqnr):
            continue
        readers = {nodes[c].op_type for c in consumers.get(tensor, []) if c in nodes}
        if readers and readers <= ACTIVATIONS:
            continue
        name = producer[tensor]
        while name in nodes and nodes[name].op_type not in COMPUTE_OPS:
            data_in = [i for i in nodes[name].input if i in producer]
            if len(data_in) != 1:
                break
            name = producer[data_in[0]]
        if name not in nodes or nodes[name].op_type not in COMPUTE_OPS:
            continue
        noise = float(10.0 ** (-float(sqnr) / 20.0))  # noise / signal, from SQNR in dB
        worst[name] = max(worst.get(name, 0.0), noise)
    out = [LayerError(n, nodes[n].op_type, err, "noise/signal") for n, err in worst.items()]
    return sorted(out, key=lambda e: -e.error)
