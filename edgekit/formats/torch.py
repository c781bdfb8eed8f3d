"""PyTorch reader: `.pt2` ExportedPrograms and TorchScript archives, loaded without running code.

What a PyTorch file may hold, and what edgekit does with it:

- a `.pt2` (`torch.export.save`): the recommended way in. `torch.export.load` can
  unpickle Python objects from such an archive (weights or constants stored with
  `use_pickle`, custom and opaque objects, sample inputs it retries
  without the weights-only guard), so an untrusted archive is checked first
  (`check_pt2`): every pickle it carries must load with `weights_only=True`.
- TorchScript (`torch.jit.save`): `torch.jit.load` rebuilds only TorchScript
  classes, compiled from the archive's TorchScript code; a Python class named in
  its pickle is refused by TorchScript's own unpickler, never imported.
- `torch.save` of a whole module, or of a bare state dict: refused at detection
  (`torch_archive.refusal`), with no unpickling at all: the pickle's opcodes are read,
  not run.

The Python factory route (`file.py:make_model`) lives in `edgekit.formats.torch_factory`.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgekit.errors import InputError, ModelError, UnsupportedModelError
from edgekit.formats.base import FormatReader, ModelInfo, read_head
from edgekit.formats.torch_archive import PT2, TORCHSCRIPT, refusal, require_torch, sniff_zip
from edgekit.signature import Signature, TensorSpec

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from edgekit.model import Model


# --- .pt2 safety ------------------------------------------------------------------


def _pickle_refusal(model: Model, what: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"{model.path}: the .pt2 archive carries pickled Python objects ({what}), which would "
        "run code when loaded; pass --trust-model if you trust where it came from"
    )


def check_pt2(model: Model) -> None:
    """Refuse a .pt2 whose loading would unpickle anything `weights_only=True` refuses."""
    import torch

    with zipfile.ZipFile(model.path) as zf:
        names = zf.namelist()
        for name in names:
            rest = name.partition("/")[2]
            if rest.endswith("_config.json") and rest.startswith("data/"):
                try:
                    config = json.loads(zf.read(name)).get("config", {})
                except (ValueError, AttributeError):
                    raise ModelError(f"{model.path}: a damaged .pt2 archive ({rest})") from None
                for fqn, meta in config.items():
                    path_name = str(meta.get("path_name", ""))
                    if meta.get("use_pickle") or path_name.startswith(("custom_obj", "opaque")):
                        raise _pickle_refusal(model, f"{fqn!r} in {rest}")
            elif rest.endswith(".pt") or rest.endswith(".pkl"):
                # sample inputs and legacy weight files: torch retries them unsafely
                try:
                    torch.load(io.BytesIO(zf.read(name)), weights_only=True)
                except Exception:
                    raise _pickle_refusal(model, rest) from None


# --- loading ------------------------------------------------------------------------


@dataclass
class Loaded:
    """A PyTorch model in memory: an ExportedProgram, a ScriptModule or an eager module."""

    kind: str  # PT2 or TORCHSCRIPT
    obj: Any

    def module(self) -> Any:
        """A callable nn.Module in eval mode (ExportedProgram.module() for a .pt2)."""
        return program_module(self.obj) if self.kind == PT2 else self.obj


def program_module(ep: Any) -> Any:
    """`ep.module()` in eval mode.

    `module()` forbids switching the instance to train or eval mode, which exporters (the TorchScript
    one, litert-torch) call or check; the graph's ops are fixed by export either way.
    """
    module = ep.module()
    for name in ("train", "eval"):
        module.__dict__.pop(name, None)
    return module.eval()


_CACHE: dict[tuple[str, int, int], Loaded] = {}


def kind_of(model: Model) -> str:
    with zipfile.ZipFile(model.path) as zf:
        kind = sniff_zip(zf.namelist())
    if kind not in (PT2, TORCHSCRIPT):
        raise ModelError(f"{model.path}: not a .pt2 or TorchScript archive")
    return kind


def load_torch(model: Model) -> Loaded:
    """Load the model (checked first unless trusted); cached per file and modification time."""
    require_torch()
    st = model.path.stat()
    key = (str(model.path.resolve()), st.st_mtime_ns, st.st_size)
    if key in _CACHE:
        return _CACHE[key]
    import torch

    kind = kind_of(model)
    try:
        if kind == PT2:
            if not model.trust_model:
                check_pt2(model)
            loaded = Loaded(PT2, torch.export.load(str(model.path)))
        else:
            loaded = Loaded(TORCHSCRIPT, torch.jit.load(str(model.path), map_location="cpu"))
    except (UnsupportedModelError, ModelError):
        raise
    except Exception as exc:  # torch raises RuntimeError, KeyError, zip and JSON errors
        raise ModelError(
            f"{model.path}: PyTorch cannot load this {kind} archive ({_first_line(exc)})"
        ) from None
    if kind == TORCHSCRIPT:
        loaded.obj.eval()
    _CACHE[key] = loaded
    return loaded


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


# --- signature ----------------------------------------------------------------------


def numpy_dtype(dtype: Any) -> str:
    """`torch.float32` -> "float32"."""
    return str(dtype).removeprefix("torch.")


def _spec(name: str, val: Any) -> TensorSpec:
    shape = getattr(val, "shape", None)
    if shape is None:
        return TensorSpec(name, None, "float32")
    dims = tuple(int(d) if str(d).lstrip("-").isdigit() else str(d) for d in shape)
    return TensorSpec(name, dims, numpy_dtype(val.dtype))


def _pt2_signature(ep: Any) -> Signature:
    nodes = {n.name: n for n in ep.graph.nodes}
    inputs = tuple(_spec(n, nodes[n].meta.get("val")) for n in ep.graph_signature.user_inputs)
    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    vals = [a.meta.get("val") if hasattr(a, "meta") else None for a in out_node.args[0]]
    names = [str(n) for n in ep.graph_signature.user_outputs]
    outputs = tuple(_spec(n, v) for n, v in zip(names, vals, strict=False))
    return Signature(inputs, outputs)


def _script_signature(sm: Any) -> Signature:
    args = [a for a in sm.forward.schema.arguments if a.name != "self"]
    returns = list(sm.forward.schema.returns)
    inputs = tuple(TensorSpec(a.name, None, "float32") for a in args)
    # TorchScript records neither shapes nor output names; outputs are named by position.
    outputs = tuple(TensorSpec(f"output_{i}", None, "float32") for i in range(len(returns)))
    return Signature(inputs, outputs)


class TorchReader(FormatReader):
    """A PyTorch model: a `.pt2` (torch.export.save) or TorchScript (torch.jit.save) zip."""

    name = "torch"
    suffixes = (".pt2", ".pt", ".ts")

    def sniff(self, path: Path) -> bool:
        if not read_head(path, 4).startswith(b"PK\x03\x04"):
            return False
        try:
            with zipfile.ZipFile(path) as zf:
                return sniff_zip(zf.namelist()) in (PT2, TORCHSCRIPT)
        except (zipfile.BadZipFile, OSError):
            return False

    def refusal(self, path: Path) -> str | None:
        return refusal(path) if path.is_file() else None

    def read(self, model: Model) -> ModelInfo:
        return _describe(model)


def _describe(model: Model) -> ModelInfo:
    loaded = load_torch(model)
    if loaded.kind == PT2:
        ep = loaded.obj
        sig = _pt2_signature(ep)
        ops = Counter(
            str(n.target).rsplit(".", 1)[0] if str(n.target).endswith(".default") else str(n.target)
            for n in ep.graph.nodes
            if n.op == "call_function"
        )
        params = sum(int(p.numel()) for p in ep.parameters())
    else:
        sm = loaded.obj
        sig = _script_signature(sm)
        ops = Counter(n.kind() for n in sm.inlined_graph.nodes() if n.kind().startswith("aten::"))
        params = sum(int(p.numel()) for p in sm.parameters())
    return ModelInfo(sig, dict(ops), params)


# --- what the converters and the runtime share --------------------------------------


def example_args(model: Model, input_shapes: Mapping[str, tuple[int, ...]] | None = None) -> tuple:
    """Seeded example tensors for the model's inputs (dynamic dims as `generate_inputs` fixes them)."""
    import torch

    from edgekit.inputs import generate_inputs

    feeds = generate_inputs(model.signature, count=1, seed=0, shapes=dict(input_shapes or {}))[0]
    return tuple(torch.from_numpy(feeds[t.name]) for t in model.signature.inputs)


def exported(model: Model, input_shapes: Mapping[str, tuple[int, ...]] | None = None) -> Any:
    """An ExportedProgram of the model: the .pt2's own (dynamic dims kept) unless `input_shapes`
    fixes shapes, else a static `torch.export.export` of its module on example inputs."""
    import torch

    loaded = load_torch(model)
    if loaded.kind == PT2 and not input_shapes:
        return loaded.obj
    if loaded.kind == TORCHSCRIPT:
        raise UnsupportedModelError(
            f"{model.path}: a TorchScript module cannot be re-exported with torch.export; "
            "export the original model to a .pt2 instead"
        )
    args = example_args(model, input_shapes)
    try:
        return torch.export.export(loaded.module(), args)
    except Exception as exc:  # torch.export raises UserError, GuardOnDataDependent, ...
        raise UnsupportedModelError(
            f"{model.path}: torch.export cannot export it with shapes "
            f"{[list(a.shape) for a in args]}: {_first_line(exc)}"
        ) from None


def check_shapes(model: Model, input_shapes: Mapping[str, tuple[int, ...]] | None) -> None:
    """Refuse shapes for inputs the model does not have (one sentence, before any export)."""
    unknown = set(input_shapes or {}) - {t.name for t in model.signature.inputs}
    if unknown:
        raise InputError(
            f"--input-shape names {sorted(unknown)}, not inputs of {model.path.name} "
            f"({[t.name for t in model.signature.inputs]})"
        )
