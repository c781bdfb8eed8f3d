"""Checking a model against a profile's limits: size, tensor RAM, ops, int8 only, static shapes.

Each broken limit is a LimitError naming the limit, the model's value and what to
do about it. What a format's graph can tell (TFLite: every tensor and op) comes
from one walker per format in `_GRAPH_WALKERS`; other formats are judged from
their signature and op histogram.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from edgekit.errors import LimitError
from edgekit.model import Model

if TYPE_CHECKING:
    from edgekit.profiles import Profile

__all__ = ["check_limits", "estimate_arena_bytes", "with_input_shapes"]

# A tensor: bytes, constant?, dtype. An op: input indices, output indices, op name.
Tensors = list[dict[str, Any]]
Ops = list[tuple[list[int], list[int], str]]


def _fmt_bytes(n: int) -> str:
    from edgekit.profiles import format_bytes

    return format_bytes(int(n))


def _dtype_size(dtype: str) -> int:
    import numpy as np

    try:
        return int(np.dtype(dtype).itemsize)
    except TypeError:
        return 4


def _tflite_graph(model: Model) -> tuple[Tensors, Ops]:
    """Tensors and ops of a TFLite model's main graph, read from the flatbuffer."""
    from edgekit.formats.tflite import ITEMSIZE, TENSOR_TYPES, FlatBuffer, op_names

    buf = FlatBuffer(model.path.read_bytes())
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
        tensors.append({"bytes": n * ITEMSIZE.get(dtype, 4), "const": const, "dtype": dtype,
                        "quantized": buf.indirect(t, 4) is not None
                        and bool(buf.scalars(buf.indirect(t, 4), 2, "f"))})  # fmt: skip
    names = op_names()
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


# The formats whose graph edgekit can walk tensor by tensor, and how.
_GRAPH_WALKERS: dict[str, Callable[[Model], tuple[Tensors, Ops]]] = {"tflite": _tflite_graph}


def _live(tensors: Tensors, ins: list[int], outs: list[int]) -> list[dict[str, Any]]:
    """The non-constant tensors an op reads or writes (each once)."""
    idx = dict.fromkeys(i for i in (*ins, *outs) if i < len(tensors))
    return [tensors[i] for i in idx if not tensors[i]["const"]]


def estimate_arena_bytes(model: Model) -> int:
    """An estimate of the RAM the tensors need at run time (the TFLM arena, for TFLite).

    A walkable graph (TFLite): the largest sum of non-constant input and output
    tensors of any one op, which a memory planner cannot go below. Other formats:
    twice the bytes of the inputs and outputs (the signature is all that is known
    without running).
    """
    walk = _GRAPH_WALKERS.get(str(model.format))
    if walk is not None:
        try:
            tensors, ops = walk(model)
        except Exception:  # a file the reader handles but this walk does not
            tensors, ops = [], []
        peak = max((sum(t["bytes"] for t in _live(tensors, i, o)) for i, o, _ in ops), default=0)
        if peak:
            return peak
    total = 0
    for t in (*model.signature.inputs, *model.signature.outputs):
        n = 1
        for d in t.shape or ():
            n *= d if isinstance(d, int) and d > 0 else 1
        total += n * _dtype_size(t.dtype)
    return 2 * total


def _compiler_plans_memory(profile: Profile) -> bool:
    return profile.compiler is not None and profile.compiler.name == "vela"


def _tflm_arena_bytes(model: Model, profile: Profile) -> int | None:
    """The arena TFLM's own planner allocates, for a tflite-micro profile where that runtime
    is installed (an op TFLM lacks is refused there, naming it); None elsewhere."""
    if profile.runtime != "tflite-micro" or str(model.format) != "tflite":
        return None
    from edgekit.runtimes import get_runtime

    rt = get_runtime("tflite-micro")
    if not rt.available():
        return None
    with rt.open(model) as session:
        return int(session.arena_bytes)  # type: ignore[attr-defined]


def _float_ops(model: Model) -> dict[str, int]:
    """Ops that compute in floating point (a walkable graph: a float non-constant tensor in
    or out; otherwise a graph without quantize ops, or with float inputs or outputs)."""
    walk = _GRAPH_WALKERS.get(str(model.format))
    if walk is not None:
        tensors, ops = walk(model)
        found: Counter[str] = Counter()
        for ins, outs, name in ops:
            if any(t["dtype"] in ("float32", "float16") for t in _live(tensors, ins, outs)):
                found[name] += 1
        return dict(found)
    sig = model.signature
    floats = [t for t in (*sig.inputs, *sig.outputs) if t.dtype in ("float32", "float16")]
    int_ops = any("quant" in k.lower() for k in model.op_histogram)
    return {} if (int_ops and not floats) else ({"float graph": 1} if not int_ops else {})


# Bytes one weight takes at each precision; int16x8 keeps int8 weights.
_WEIGHT_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1, "int8-float-fallback": 1,
                 "dynamic": 1, "int16x8": 1}  # fmt: skip


def check_limits(
    model: Model, profile: Profile, *, stage: str = "result", precision: str | None = None
) -> dict[str, Any]:
    """Check `model` against `profile`'s limits; a LimitError names the limit, value and remedy.

    `stage="source"` checks only what the source already decides: dynamic shapes
    that no --input-shape fixes and, given the `precision` it will ship at, whether
    its parameters alone (count x bytes per weight) already exceed max_model_bytes,
    whatever its format, before any conversion runs. `stage="result"` checks
    everything. Returns the values that were checked, for the manifest.
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
        if lim.max_model_bytes is not None and precision in _WEIGHT_BYTES:
            _check_param_bytes(model, profile, precision, checked)
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
    # A compiler that plans memory itself (Vela) has its own figures checked after it runs.
    if lim.max_arena_bytes is not None and not _compiler_plans_memory(profile):
        checked["arena_bytes_estimate"] = arena = estimate_arena_bytes(model)
        how = "estimate"
        exact = _tflm_arena_bytes(model, profile)
        if exact is not None:
            checked["arena_bytes_tflm"] = arena = exact
            how = "tflm"
        if arena > lim.max_arena_bytes:
            need = "TFLite Micro's planner allocates" if how == "tflm" else "its tensors need about"
            raise LimitError(
                f"{model.path}: {need} {_fmt_bytes(arena)} of tensor arena, over {name}'s "
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


def _check_param_bytes(
    model: Model, profile: Profile, precision: str, checked: dict[str, Any]
) -> None:
    """Refuse a source whose weights alone, stored at `precision`, break max_model_bytes."""
    limit = profile.limits.max_model_bytes
    assert limit is not None
    need = model.param_count * _WEIGHT_BYTES[precision]
    checked["param_bytes_estimate"] = need
    # A lower bound (graph, int32 biases and scales add to it): only a sure miss is refused here.
    if need > limit:
        smaller = ("prune it or use a smaller model" if _WEIGHT_BYTES[precision] == 1
                   else "quantize it to int8 (--precision int8), prune it, or use a smaller model")  # fmt: skip
        raise LimitError(
            f"{model.path}: its {model.param_count:,} parameters take {_fmt_bytes(need)} at "
            f"{precision}, over {profile.name}'s max_model_bytes of {_fmt_bytes(limit)}, so "
            f"it cannot fit whatever the conversion; {smaller}"
        )


def with_input_shapes(model: Model, shapes: Mapping[str, tuple[int, ...]]) -> Model:
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
