"""The Python factory route into the torch format: `path/to/file.py:make_model` or
`package.module:make_model`, a function returning an `nn.Module`.

It runs the user's code, so it needs `trust_model` (the CLI's `--trust-model`).
The module is traced once with example inputs (`--example-input SHAPE[:DTYPE]`,
repeatable, or an npz of arrays) and exported with `torch.export` to a `.pt2`
in a temporary folder; from then on it is a `.pt2` like any other.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgekit.errors import InputError, ModelError, UnsupportedModelError

_SPEC = re.compile(r"^(?P<target>[^:]+\.py|[A-Za-z_][\w.]*):(?P<attr>[A-Za-z_]\w*)$")
_DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int8", "uint8", "bool")


def is_factory(spec: str) -> bool:
    """True when `spec` reads as `file.py:function` or `package.module:function`."""
    return _SPEC.match(str(spec)) is not None and not Path(spec).exists()


def parse_example_input(item: str) -> tuple[tuple[int, ...], str]:
    """`1x3x32x32` or `1,3,32,32:float16` -> ((1, 3, 32, 32), dtype); float32 by default."""
    dims, _, dtype = item.partition(":")
    dtype = dtype or "float32"
    try:
        shape = tuple(int(d) for d in re.split(r"[x,]", dims.strip()))
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape) or dtype not in _DTYPES:
        raise InputError(
            f"--example-input {item!r} is not SHAPE[:DTYPE] with positive dimensions "
            f"(e.g. 1x3x32x32:float32; dtypes: {', '.join(_DTYPES)}) nor an .npz file"
        )
    return shape, dtype


def example_tensors(items: Sequence[str]) -> tuple[Any, ...]:
    """Example tensors from `--example-input` values, or from an npz's arrays in their order."""
    import numpy as np
    import torch

    if len(items) == 1 and items[0].endswith(".npz"):
        path = Path(items[0])
        if not path.is_file():
            raise InputError(f"{path}: no such example-input file")
        with np.load(path, allow_pickle=False) as npz:
            return tuple(torch.from_numpy(np.array(npz[n])) for n in npz.files)
    tensors = []
    for item in items:
        shape, dtype = parse_example_input(item)
        gen = torch.Generator().manual_seed(0)
        t = torch.rand(shape, generator=gen) * 2 - 1
        tensors.append(t.to(getattr(torch, dtype)) if dtype != "bool" else t > 0)
    return tuple(tensors)


def _import_factory(spec: str) -> Any:
    m = _SPEC.match(spec)
    assert m is not None
    target, attr = m.group("target"), m.group("attr")
    try:
        if target.endswith(".py"):
            path = Path(target)
            if not path.is_file():
                raise InputError(f"{path}: no such Python file for the model factory {spec!r}")
            mod_spec = importlib.util.spec_from_file_location(f"edgekit_factory_{path.stem}", path)
            assert mod_spec is not None and mod_spec.loader is not None
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[mod_spec.name] = module  # dataclasses and pickling look modules up here
            mod_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except InputError:
        raise
    except Exception as exc:  # whatever the user's module raises on import
        raise ModelError(f"{spec}: importing the factory's module failed ({exc!r})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise InputError(f"{spec}: {target} has no function {attr!r}")
    return fn


def _workdir() -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="edgekit-torch-factory-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    return tmp


def export_factory(spec: str, example_input: Sequence[str] | str | None, trust_model: bool) -> Path:
    """Run the factory, export its module with `torch.export`, and return the `.pt2` path."""
    if not trust_model:
        raise UnsupportedModelError(
            f"{spec}: a Python model factory runs your code, which edgekit does only when "
            "told to; pass --trust-model if you trust it"
        )
    items = [example_input] if isinstance(example_input, str) else list(example_input or [])
    if not items:
        raise InputError(
            f"{spec}: a model factory needs --example-input SHAPE[:DTYPE] (e.g. 1x3x32x32) "
            "or an .npz of example inputs, to trace the model"
        )
    from edgekit.formats.torch_archive import require_torch

    require_torch()
    import torch

    fn = _import_factory(spec)
    try:
        module = fn()
    except Exception as exc:
        raise ModelError(f"{spec}: the factory raised {exc!r}") from None
    if not isinstance(module, torch.nn.Module):
        raise InputError(f"{spec}: the factory returned {type(module).__name__}, not an nn.Module")
    args = example_tensors(items)
    module.eval()
    try:
        ep = torch.export.export(module, args)
    except Exception as exc:  # torch.export's UserError, shape guards, unsupported Python
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnsupportedModelError(
            f"{spec}: torch.export cannot export the module: {first}"
        ) from None
    stem = (
        Path(spec.split(":")[0]).stem if spec.split(":")[0].endswith(".py") else spec.split(":")[0]
    )
    out = _workdir() / f"{stem.rsplit('.', 1)[-1]}.pt2"
    torch.export.save(ep, str(out))
    return out
