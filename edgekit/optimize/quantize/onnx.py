"""ONNX backend: ONNX Runtime post-training quantization (dynamic, static QDQ or
QOperator) and fp16.

``quant_pre_process`` (shape inference and graph cleanup) runs first. Static
quantization calibrates with a ``CalibrationDataReader`` over the calibration
samples (MinMax, Entropy or Percentile). Types follow the CPU (see ``cpu_types``);
in ``optimize``'s auto mode the other signedness and Percentile calibration are also
tried and measured. fp16 is `edgekit.convert`'s (onnxconverter-common, verified by
every `convert` that makes it).
"""

from __future__ import annotations

import contextlib
import io
import platform
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import UnsupportedModelError
from edgekit.optimize.quantize.algorithm import QuantizePass
from edgekit.optimize.quantize.backend import Calibration, LayerError, QuantBackend, QuantOptions

# Ops worth int8 kernels; "int8-float-fallback" quantizes only these.
COMPUTE_OPS = ("Conv", "MatMul", "Gemm", "ConvTranspose")
ACTIVATIONS = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid"}


@dataclass(frozen=True)
class ONNXOptions(QuantOptions):
    """ONNX Runtime's knobs (``None``: chosen for this CPU, see `cpu_types`)."""

    per_channel: bool | None = None
    quant_format: str | None = None  # "QDQ" or "QOperator"
    calibrate_method: str = "MinMax"  # MinMax, Entropy, Percentile
    activation_type: str | None = None  # int8, uint8, int16
    weight_type: str | None = None
    reduce_range: bool | None = None


def has_vnni() -> bool:
    """Whether this CPU has int8 dot-product instructions (VNNI, AMX, Arm dotprod/i8mm)."""
    from edgekit.devices import cpu

    feats = set(cpu()["isa_features"])
    return bool(feats & {"avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"})


def is_arm() -> bool:
    """Whether this machine is an Arm one."""
    machine = platform.machine()
    return machine.lower() in ("aarch64", "arm64") or machine.startswith("armv")


def cpu_types(options: ONNXOptions) -> tuple[str, str, bool]:
    """(activation type, weight type, reduce_range) fast on this CPU unless options say.

    x86: uint8 activations with int8 weights (U8S8) are what ONNX Runtime's MLAS kernels
    run natively (VNNI's vpdpbusd is u8 x s8); measured here with ORT 1.32 on an AVX-512
    VNNI CPU, U8S8 QDQ MobileNetV2 ran 2.2-2.3x fp32, S8S8 QDQ 1.3x (benchmarks/README.md,
    Optimize). Without VNNI, u8s8 goes through vpmaddubsw, which can saturate, so weights
    keep 7 bits (reduce_range). Arm: S8S8 (sdot / i8mm).
    """
    vnni = has_vnni()
    arm = is_arm()
    act = options.activation_type or ("int8" if arm else "uint8")
    weight = options.weight_type or "int8"
    if options.reduce_range is not None:
        reduce = options.reduce_range
    else:
        reduce = not vnni and not arm
    return act, weight, reduce


def _qtype(name: str) -> object:
    from onnxruntime.quantization import QuantType

    return {
        "int8": QuantType.QInt8,
        "uint8": QuantType.QUInt8,
        "int16": QuantType.QInt16,
        "uint16": QuantType.QUInt16,
    }[name]


def reader(src: Path, calib: Calibration) -> Any:
    """An ORT CalibrationDataReader feeding `calib` one sample at a time to `src`'s input."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader

    m = onnx.load(str(src), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    name = next(i.name for i in m.graph.input if i.name not in inits)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(())
            self.rewind()

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.it, None)
            return None if x is None else {name: x}

        def rewind(self) -> None:
            self.it = calib.samples()

    return Reader()


def pre_process(src: Path, out: Path) -> Path:
    """``quant_pre_process`` (symbolic shape inference + ORT basic optimizations)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src = _simplified(src, out.with_name(f"{out.stem}-slim.onnx"))
    try:
        quant_pre_process(str(src), str(out), skip_symbolic_shape=False)
    except Exception:  # noqa: BLE001 - symbolic shape inference fails on some graphs; retry
        try:
            quant_pre_process(str(src), str(out), skip_symbolic_shape=True)
        except Exception:  # noqa: BLE001 - pre-processing is an improvement, not a requirement
            shutil.copyfile(src, out)
    return out


def _simplified(src: Path, out: Path) -> Path:
    """`src` constant-folded when it computes weights at run time or has an old IR (the
    calibrator would ask for those weights' shapes as feeds); else `src` itself."""
    from edgekit.convert.onnx_simplify import needs_simplify, simplify
    from edgekit.errors import EdgekitError
    from edgekit.model import load

    if not needs_simplify(src):
        return src
    try:
        simplify(load(src), out, verify=False)  # the quantized result is verified
    except EdgekitError:
        return src
    # Such graphs are also of an old opset; per-channel DequantizeLinear (axis) needs 13.
    import onnx
    from onnx import version_converter

    proto = onnx.load(str(out))
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 13)
    if opset < 13:
        try:
            onnx.save(version_converter.convert_version(proto, 13), str(out))
        except Exception:  # noqa: BLE001 - the converter raises C++ errors; keep the opset
            pass
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


class ONNXBackend(QuantBackend):
    """ONNX files from a float ONNX file."""

    format = "onnx"
    tool = "ONNX Runtime"
    Options = ONNXOptions
    compute_types = COMPUTE_OPS

    def options_for(self, profile: Any) -> ONNXOptions:
        """The profile's ``[quantization]`` table (ONNX Runtime's names)."""
        q = profile.quantization
        return ONNXOptions(per_channel=q.per_channel, quant_format=q.quant_format,
                           activation_type=q.activation_type, weight_type=q.weight_type,
                           reduce_range=q.reduce_range)  # fmt: skip

    def alternatives(self, options: ONNXOptions) -> list[tuple[str, QuantOptions]]:
        """Which signedness is faster depends on the CPU and ORT's kernels: the other one
        too, unless the options fix it. And Percentile calibration, whose clipped ranges can
        keep the accuracy MinMax loses under a profile's 7-bit weights (reduce_range): on
        digits-trained MobileNetV3Large for x86-avx2, MinMax lost 1.11 points at 1.77x fp32,
        Percentile 0.28 at 1.67x (benchmarks/README.md, ONNX Runtime's calibration)."""
        out: list[tuple[str, QuantOptions]] = []
        if options.activation_type is None:
            other = "int8" if cpu_types(options)[0] == "uint8" else "uint8"
            out.append((f"int8 ({other} activations)", replace(options, activation_type=other)))
        if options.calibrate_method == "MinMax":
            pct = replace(options, calibrate_method="Percentile")
            out.append(("int8 (Percentile calibration)", pct))
        return out

    def quantize(
        self,
        model: Any,
        precision: str,
        calib: Calibration | None,
        options: ONNXOptions,
        out: Path,
    ) -> Path:
        src = Path(getattr(model, "path", model))
        if precision == "fp32":
            shutil.copyfile(src, out)
            return out
        if precision == "fp16":
            from edgekit.convert._common import onnx_to_fp16

            onnx_to_fp16(src, out)
            return out
        from onnxruntime.quantization import QuantFormat, quantize_dynamic, quantize_static

        opts = options
        with tempfile.TemporaryDirectory(prefix="ek-ortq-") as tmp:
            pre = pre_process(src, Path(tmp) / "pre.onnx")
            per_channel = opts.per_channel if opts.per_channel is not None else True
            if precision == "dynamic":
                quantize_dynamic(str(pre), str(out), weight_type=_qtype(opts.weight_type or "int8"),
                                 per_channel=per_channel, nodes_to_exclude=list(opts.keep_float))  # fmt: skip
                return out
            assert calib is not None  # the algorithm wraps it for every calibrated precision
            act, weight, reduce = cpu_types(opts)
            if precision == "int16x8":
                act, weight, reduce = "int16", "int8", False
            fmt = (opts.quant_format or "QDQ").upper()
            if precision == "int16x8" or fmt not in ("QDQ", "QOPERATOR"):
                fmt = "QDQ"
            op_types = list(COMPUTE_OPS) if precision == "int8-float-fallback" else None
            excluded = float_region(pre, opts.keep_float)
            if opts.keep_float_types:
                nodes = _graph(pre)[0]
                excluded += [
                    n for n, node in nodes.items() if node.op_type in opts.keep_float_types
                ]
            # the histogram calibrators (Percentile, Entropy) print their progress
            with contextlib.redirect_stdout(io.StringIO()):
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
                    # int16 activations centred on zero; int8 ones keep ORT's default
                    # asymmetric range: symmetric S8S8 MobileNetV2 ran 0.94x fp32 here,
                    # asymmetric 1.3x.
                    extra_options={"ActivationSymmetric": act == "int16"},
                )
        return out

    def layer_errors(
        self, model: Any, calib: Calibration, options: ONNXOptions, limit: int = 32
    ) -> list[LayerError]:
        """``qdq_loss_debug``: for each compute node, the noise/signal ratio (from the
        SQNR) between its output in the float and in the QDQ model (bigger is worse)."""
        from onnxruntime.quantization.qdq_loss_debug import (
            collect_activations,
            compute_activation_error,
            create_activation_matching,
            modify_model_output_intermediate_tensors,
        )

        samples = calib.head(limit)
        with tempfile.TemporaryDirectory(prefix="ek-ortdbg-") as tmp:
            t = Path(tmp)
            pre = pre_process(Path(getattr(model, "path", model)), t / "pre.onnx")
            q = self.quantize(pre, "int8", samples, options, t / "q.onnx")
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
            # xmodel_err: float model vs quantized model at this tensor. (qdq_err, the
            # tensor's own round trip, misleads where ORT folds a Relu into the QDQ range.)
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
        return [LayerError(n, nodes[n].op_type, err, "noise/signal") for n, err in worst.items()]


class ONNXQuantize(QuantizePass):
    """The ``quant_onnx`` pass."""

    name = "quant_onnx"
    backend = ONNXBackend()
