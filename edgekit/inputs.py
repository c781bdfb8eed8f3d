"""Generated inputs for any signature: right dtype, quantized ranges respected.

Used wherever edgekit needs inputs it was not given: benchmarks, parity checks
after a conversion, and the one-shot run of `inspect`. Given a Model rather than a
Signature, inputs its graph reads as indices or shapes get values valid there
(`Model.input_rules`): a Gather index within its table, an Expand shape that broadcasts.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from edgekit.errors import InputError
from edgekit.model import MAX_TENSOR_ELEMENTS, InputRule, Model, Signature, TensorSpec


def concrete_shape(
    spec: TensorSpec, batch: int = 1, override: tuple[int, ...] | None = None
) -> tuple[int, ...]:
    """Fix every dynamic dimension: the batch (first) dim to `batch`, others to 1.

    A shape with a 0 dimension, or beyond MAX_TENSOR_ELEMENTS, is refused before any
    allocation.
    """
    if override is not None:
        shape = tuple(int(d) for d in override)
    elif spec.shape is None:
        raise InputError(
            f"input '{spec.name}' has unknown rank; give its shape with --input-shape "
            f"{spec.name}=1,..."
        )
    else:
        shape = tuple(
            d if isinstance(d, int) and d >= 0 else (batch if i == 0 else 1)
            for i, d in enumerate(spec.shape)
        )
    if 0 in shape:
        raise InputError(
            f"input '{spec.name}' has shape {list(shape)}, with a dimension of 0 (a tensor "
            f"with no elements), so there is nothing to run; give its shape with "
            f"--input-shape {spec.name}=..."
        )
    elements = 1
    for d in shape:
        elements *= d
    if elements > MAX_TENSOR_ELEMENTS:
        raise InputError(
            f"input '{spec.name}' declares shape {list(shape)} ({elements:.3g} elements), "
            f"beyond edgekit's limit of {MAX_TENSOR_ELEMENTS:.3g}; give a smaller --input-shape"
        )
    return shape


def _sample(
    spec: TensorSpec, shape: tuple[int, ...], rng: np.random.Generator, rule: InputRule | None
) -> np.ndarray:
    dtype = np.dtype(spec.dtype)
    if rule is not None and rule.value is not None and len(rule.value) == int(np.prod(shape)):
        return np.asarray(rule.value).reshape(shape).astype(dtype)
    if rule is not None and rule.low is not None and rule.high is not None:
        return rng.integers(rule.low, rule.high, size=shape, endpoint=True).astype(dtype)
    if dtype.kind == "f":
        return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if spec.quantization is not None or dtype.itemsize == 1:
            lo, hi = int(info.min), int(info.max)  # the whole representable range
        else:
            lo, hi = 0, 10  # ids and indices: small non-negative values
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
    raise InputError(f"input '{spec.name}' has dtype {spec.dtype}, which edgekit cannot generate")


def generate_inputs(
    signature: Signature | Model,
    *,
    count: int = 1,
    seed: int = 0,
    batch: int = 1,
    shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> list[dict[str, np.ndarray]]:
    """`count` seeded feed dicts for `signature`, each a distinct sample.

    A Model instead of a Signature also keeps index and shape inputs valid for its graph.
    """
    model = signature if isinstance(signature, Model) else None
    if model is not None:
        signature = model.signature
    rng = np.random.default_rng(seed)
    shapes = shapes or {}
    unknown = set(shapes) - {t.name for t in signature.inputs}
    if unknown:
        raise InputError(
            f"--input-shape names {sorted(unknown)}, not inputs of the model "
            f"({[t.name for t in signature.inputs]})"
        )
    fixed = {t.name: concrete_shape(t, batch, shapes.get(t.name)) for t in signature.inputs}
    rules = model.input_rules(fixed) if model is not None else {}
    return [
        {t.name: _sample(t, fixed[t.name], rng, rules.get(t.name)) for t in signature.inputs}
        for _ in range(count)
    ]


def parse_shapes(items: tuple[str, ...] | list[str]) -> dict[str, tuple[int, ...]]:
    """Parse `NAME=1,3,224,224` strings (the CLI's --input-shape)."""
    shapes = {}
    for item in items:
        name, sep, dims = item.rpartition("=")
        try:
            if not sep or not name:
                raise ValueError
            shapes[name] = tuple(int(d) for d in dims.split(","))
        except ValueError:
            raise InputError(
                f"--input-shape {item!r} is not NAME=D1,D2,... (e.g. input=1,3,224,224)"
            ) from None
        if any(d <= 0 for d in shapes[name]):
            raise InputError(f"--input-shape {item!r}: every dimension must be positive")
    return shapes
