"""Keras reader (.keras archive or legacy .h5), loaded with safe_mode unless trusted.

An untrusted file is checked twice before Keras builds anything from it: edgekit
reads the model's config JSON itself (`config.json` in a .keras archive, the
`model_config` attribute of an .h5) and refuses Lambda layers, serialized Python
lambdas and references to modules outside Keras; then Keras loads it with
`safe_mode=True`. The first check does not depend on the installed Keras getting
safe_mode right (Keras before 3.11.3 ignored it for .h5 files, CVE-2025-9905).
An .h5 config is read in a child process with a time limit, because HDF5 can loop
forever on a damaged file.
"""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.errors import ModelError, UnsupportedModelError, first_line
from edgekit.extras import require
from edgekit.formats.base import FormatReader, ModelInfo, read_head
from edgekit.signature import Signature, TensorSpec

if TYPE_CHECKING:
    from edgekit.formats.base import ModelFile

# Packages whose objects a config may name: Keras itself and its official model libraries.
_TRUSTED_PACKAGES = frozenset({"keras", "keras_hub", "keras_cv", "keras_nlp", "builtins"})
# A .keras config larger than this is not a model config.
_MAX_CONFIG_BYTES = 64 << 20


def _code_refusal(model: ModelFile, what: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"{model.path}: the model contains Python code ({what}), which edgekit does not run "
        "from an untrusted file; pass --trust-model if you trust where it came from"
    )


# Reading an .h5 attribute can loop forever inside HDF5 on a damaged file (found by
# tests/test_fuzz.py), so the config is read in a child process that can be stopped.
H5_CONFIG_SECONDS = 20.0
_H5_CONFIG_SCRIPT = """
import sys, h5py
with h5py.File(sys.argv[1], "r") as fh:
    text = fh.attrs.get("model_config")
if text is None:
    sys.exit(3)
sys.stdout.buffer.write(text.encode("utf-8") if isinstance(text, str) else bytes(text))
"""


def _read_h5_config(model: ModelFile) -> bytes:
    import subprocess
    import sys

    try:
        proc = subprocess.run(
            [sys.executable, "-c", _H5_CONFIG_SCRIPT, str(model.path)],
            capture_output=True,
            timeout=H5_CONFIG_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise ModelError(
            f"{model.path}: reading its model config did not finish in {H5_CONFIG_SECONDS:g} s "
            "(HDF5 loops on this file); the .h5 file is damaged"
        ) from None
    if proc.returncode == 3:
        raise ModelError(f"{model.path}: an .h5 file without a Keras model config")
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ModelError(
            f"{model.path}: a damaged .h5 file, its model config is unreadable "
            f"({lines[-1] if lines else f'exit code {proc.returncode}'})"
        )
    return proc.stdout


def _read_config(model: ModelFile) -> Any:
    """The model's config JSON, read without Keras (so nothing in it is built or imported)."""
    try:
        if zipfile.is_zipfile(model.path):
            with zipfile.ZipFile(model.path) as zf:
                name = "config.json"
                if zf.getinfo(name).file_size > _MAX_CONFIG_BYTES:
                    raise ModelError(f"{model.path}: its config.json is implausibly large")
                text = zf.read(name)
        else:
            text = _read_h5_config(model)
        return json.loads(text.decode("utf-8"))
    except ModelError:
        raise
    except Exception as exc:  # zip, UTF-8, JSON and RecursionError (deep JSON) alike
        raise ModelError(
            f"{model.path}: a damaged Keras file, its model config is unreadable "
            f"({first_line(exc)})"
        ) from None


def check_no_code(model: ModelFile, config: Any) -> None:
    """Raise UnsupportedModelError if the config would run or import Python code."""
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        class_name = node.get("class_name")
        if class_name == "Lambda":
            layer = node.get("config")
            name = layer.get("name") if isinstance(layer, dict) else None
            raise _code_refusal(model, f"a Lambda layer {name!r}" if name else "a Lambda layer")
        if class_name == "__lambda__" or node.get("function_type") == "lambda":
            raise _code_refusal(model, "a serialized Python function")
        module = node.get("module")
        if isinstance(module, str) and module.split(".")[0] not in _TRUSTED_PACKAGES:
            raise _code_refusal(model, f"an object from the Python module {module!r}")
        stack.extend(node.values())


def load_keras(model: ModelFile) -> Any:
    """Load the Keras model; safe_mode refuses embedded code unless the user trusts the file."""
    config = _read_config(model)  # also when trusted: Keras would hang where HDF5 loops
    if not model.trust_model:
        check_no_code(model, config)
    import tempfile

    keras = require("keras", "train")
    try:
        with tempfile.TemporaryDirectory(prefix="edgekit-keras-") as tmp:
            return keras.saving.load_model(
                _path_keras_accepts(model.path, Path(tmp)),
                compile=False,
                safe_mode=not model.trust_model,
            )
    except ValueError as exc:
        text = str(exc)
        if "safe_mode" in text or "Lambda" in text or "lambda" in text:
            raise UnsupportedModelError(
                f"{model.path}: the model contains Python code (a Lambda layer or custom "
                "function), which edgekit does not run from an untrusted file; pass "
                "--trust-model if you trust where it came from"
            ) from None
        raise ModelError(
            f"{model.path}: Keras cannot load this model ({first_line(text)})"
        ) from None
    except Exception as exc:  # h5py, zipfile and json errors on damaged files
        raise ModelError(
            f"{model.path}: Keras cannot load this model ({first_line(str(exc))})"
        ) from None


def _path_keras_accepts(path: Path, tmp: Path) -> str:
    """`path`, or a link to it in `tmp` whose extension matches its content.

    Keras picks its reader from the extension, edgekit from the content: a .keras file
    renamed to .h5 (or the reverse) is read through a link with the right extension.
    """
    want = ".keras" if zipfile.is_zipfile(path) else ".h5"
    if path.suffix.lower() == want or (want == ".h5" and path.suffix.lower() == ".hdf5"):
        return str(path)
    link = tmp / f"model{want}"
    link.symlink_to(path.resolve())
    return str(link)


def _specs(tensors: list[Any], names: list[str]) -> tuple[TensorSpec, ...]:
    return tuple(
        TensorSpec(name, tuple(t.shape), str(getattr(t.dtype, "name", t.dtype)))
        for t, name in zip(tensors, names, strict=True)
    )


_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"


def _zip_names(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as zf:
        return set(zf.namelist())


class KerasReader(FormatReader):
    """A Keras model: a .keras zip archive holding config.json, or a legacy HDF5 (.h5) file."""

    name = "keras"
    suffixes = (".keras", ".h5", ".hdf5")

    def sniff(self, path: Path) -> bool:
        head = read_head(path, 8)
        if head.startswith(_HDF5_MAGIC):
            return True
        if not head.startswith(_ZIP_MAGIC):
            return False
        try:
            names = _zip_names(path)
        except (zipfile.BadZipFile, OSError):
            return False
        return "config.json" in names or "metadata.json" in names

    def refusal(self, path: Path) -> str | None:
        if not read_head(path, 4).startswith(_ZIP_MAGIC):
            return None
        try:
            _zip_names(path)
        except (zipfile.BadZipFile, OSError) as exc:
            return f"a damaged zip archive, not a readable .keras model ({exc})"
        return "a zip archive without config.json, so not a .keras model"

    def read(self, model: ModelFile) -> ModelInfo:
        return _describe(model)


def _describe(model: ModelFile) -> ModelInfo:
    km = load_keras(model)
    inputs = list(km.inputs)
    outputs = list(km.outputs)
    in_names = list(getattr(km, "input_names", None) or [t.name for t in inputs])
    out_names = list(getattr(km, "output_names", None) or [t.name for t in outputs])
    ops = Counter(
        type(layer).__name__ for layer in km.layers if type(layer).__name__ != "InputLayer"
    )
    sig = Signature(_specs(inputs, in_names), _specs(outputs, out_names))
    return ModelInfo(sig, dict(ops), int(km.count_params()))
