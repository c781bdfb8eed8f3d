"""What a PyTorch archive is, told from its zip members and pickle opcodes alone.

Model detection asks this module (through `edgekit.formats.torch.TorchReader`), so
it imports no framework; nothing in a file is unpickled or run here.
"""

from __future__ import annotations

import pickletools
import zipfile
from pathlib import Path

from edgekit.errors import MissingDependencyError

# Archive kinds `sniff_zip` tells apart.
PT2, TORCHSCRIPT, PICKLE = "pt2", "torchscript", "pickle"

# Modules a bare state dict's pickle names (tensor rebuilds, storages, ordered dicts).
_STATE_DICT_MODULES = frozenset({"collections", "torch", "torch._utils", "torch._tensor"})


def _prefix(names: list[str], marker: str) -> str | None:
    """The archive's top folder when one of its members is `<folder>/<marker>`."""
    for n in names:
        head, sep, rest = n.partition("/")
        if sep and rest == marker:
            return head
    return None


def sniff_zip(names: list[str]) -> str | None:
    """Which PyTorch archive the zip member `names` make up (PT2, TORCHSCRIPT, PICKLE) or None."""
    if _prefix(names, "archive_format") is not None and any("/models/" in n for n in names):
        return PT2
    if _prefix(names, "data.pkl") is not None:
        has_code = any(n.split("/", 2)[1:2] == ["code"] for n in names)
        return TORCHSCRIPT if has_code and _prefix(names, "constants.pkl") else PICKLE
    return None


def _pickle_globals(data: bytes) -> set[str]:
    """The `module.name` globals the pickles in `data` refer to, read from their opcodes (nothing
    runs). A legacy torch.save file is several pickles in a row, then raw tensor bytes."""
    import io

    found: set[str] = set()
    stream = io.BytesIO(data)
    first = True
    while stream.tell() < len(data):
        strings: list[str] = []
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                    strings.append(str(arg))
                elif op.name == "GLOBAL":
                    found.add(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.add(f"{strings[-2]}.{strings[-1]}")
        except Exception:  # damaged, or the raw tensor bytes after a legacy file's pickles
            if first:
                found.add("<unreadable>")
            break
        first = False
    return found


def pickle_refusal(data: bytes) -> str:
    """Why a `torch.save` pickle is refused: a whole module, or a state dict alone."""
    names = _pickle_globals(data)
    code = sorted(
        (n for n in names if n.rsplit(".", 1)[0] not in _STATE_DICT_MODULES),
        # name the user's own class (or os.system) before torch's and the builtins
        key=lambda n: (n.split(".")[0] in ("torch", "builtins", "__builtin__"), n),
    )
    if code:
        return (
            f"a pickled PyTorch object (torch.save of a module, naming {code[0]}), which "
            "edgekit never loads because unpickling it runs arbitrary code; export it instead with "
            "torch.export.save(torch.export.export(model, example_args), 'model.pt2')"
        )
    return (
        "a PyTorch state dict (weights without the model's code); pass the Python "
        "factory that builds the model instead, e.g. `net.py:make_model --example-input "
        "1x3x32x32 --trust-model`, or export a .pt2 with torch.export.save"
    )


def refusal(path: Path) -> str | None:
    """Why the file at `path` is a PyTorch file edgekit refuses, or an unknown zip archive, or
    None (not a zip, or a damaged one: the Keras reader names that)."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return pickle_refusal(path.read_bytes())  # a legacy (non-zip) torch.save or a raw pickle
    if not head.startswith(b"PK\x03\x04"):
        return None
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if sniff_zip(names) == PICKLE:
                return pickle_refusal(zf.read(f"{_prefix(names, 'data.pkl')}/data.pkl"))
    except (zipfile.BadZipFile, OSError, KeyError):
        return None
    return (
        "a zip archive that is neither a PyTorch .pt2 or TorchScript archive nor a .keras "
        "model (no config.json)"
    )


def require_torch() -> None:
    """Raise a MissingDependencyError naming the extra when torch is absent."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise MissingDependencyError("PyTorch models need torch; run: pip install 'edgekit[torch]'")
