"""Reading a bundle: extract an archive safely, check every checksum, run it here.

This module is what `edgekit bench` and `edgekit run` use, so it imports only the
model, runtimes, errors and outputs: never bench, optimize or the deploy flow.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import BundleError, InputError
from edgekit.model import Model, sha256_file

__all__ = [
    "MANIFEST",
    "MANIFEST_SCHEMA_VERSION",
    "LoadedBundle",
    "extract_bundle",
    "host_runtime",
    "load_bundle",
    "run_bundle",
]

MANIFEST_SCHEMA_VERSION = 1
MANIFEST = "manifest.json"


@dataclass
class LoadedBundle:
    """A checked bundle: where its model is and how to run it (what `edgekit bench` reads)."""

    path: Path
    manifest: dict[str, Any]
    model_path: Path
    runtime: str
    device: str
    provider: str | None
    threads: int | None
    providers: list[str] = field(default_factory=list)
    delegate: str | None = None

    @property
    def model(self) -> Path:
        return self.model_path


def host_runtime(profile_runtime: str) -> str:
    """The registered runtime that runs a profile's models on this host (its `serves` says so)."""
    from edgekit.runtimes import RUNTIMES, get_runtime

    for name in RUNTIMES:
        if get_runtime(name).serves(profile_runtime):
            return name
    return profile_runtime  # open_session names the valid runtimes when this is none of them


def _check_member(m: tarfile.TarInfo, archive: Path) -> str:
    name = m.name
    parts = Path(name).parts
    if (
        name.startswith(("/", "\\"))
        or os.path.isabs(name)
        or ".." in parts
        or (len(name) > 1 and name[1] == ":")
    ):
        raise BundleError(f"{archive}: member '{name}' points outside the bundle folder; refused")
    if m.issym() or m.islnk():
        raise BundleError(f"{archive}: member '{name}' is a link; refused")
    if not (m.isfile() or m.isdir()):
        raise BundleError(f"{archive}: member '{name}' is a device or special file; refused")
    return name


def extract_bundle(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract a bundle ``.tar.gz`` inside `dest` after checking every member; return the folder.

    Refuses absolute paths, ``..``, links and device or special files before
    writing anything.
    """
    archive, dest = Path(archive), Path(dest)
    try:
        tar = tarfile.open(archive, "r:gz")
    except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:
        raise BundleError(f"{archive}: not a readable .tar.gz bundle ({exc})") from None
    try:
        with tar:
            members = tar.getmembers()
            names = [_check_member(m, archive) for m in members]
            dest.mkdir(parents=True, exist_ok=True)
            root = dest.resolve()
            for m, name in zip(members, names, strict=True):
                target = (root / name).resolve()
                if root != target and root not in target.parents:
                    raise BundleError(f"{archive}: member '{name}' points outside {dest}; refused")
                if m.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(m)
                if src is None:
                    raise BundleError(f"{archive}: member '{name}' cannot be read")
                with src, open(target, "wb") as fh:
                    shutil.copyfileobj(src, fh)
                os.chmod(target, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BundleError(
            f"{archive}: a damaged .tar.gz bundle ({exc or type(exc).__name__})"
        ) from None
    tops = {Path(n).parts[0] for n in names if Path(n).parts}
    if len(tops) == 1 and (dest / next(iter(tops)) / MANIFEST).is_file():
        return dest / next(iter(tops))
    if (dest / MANIFEST).is_file():
        return dest
    raise BundleError(f"{archive}: holds no {MANIFEST}; not an edgekit bundle")


def _read_manifest(p: Path) -> dict[str, Any]:
    """The manifest of folder `p`, its shape checked (an edited one is refused in one sentence)."""
    if not (p / MANIFEST).is_file():
        raise BundleError(f"{p}: no {MANIFEST} here; not an edgekit bundle folder")
    try:
        manifest = json.loads((p / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"{p / MANIFEST}: unreadable ({exc})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{p / MANIFEST}: is not a JSON object; not an edgekit bundle manifest")
    if manifest.get("schema_version") != MANIFEST_SCHEMA_VERSION:
        raise BundleError(
            f"{p / MANIFEST}: schema_version {manifest.get('schema_version')!r}, this edgekit "
            f"reads {MANIFEST_SCHEMA_VERSION}"
        )
    files = manifest.get("files") or {}
    if not isinstance(files, dict) or not all(
        isinstance(rel, str) and "\0" not in rel and isinstance(digest, str)
        for rel, digest in files.items()
    ):
        raise BundleError(f"{p / MANIFEST}: 'files' is not a map of file names to sha256 digests")
    for key in ("model", "runtime"):
        if not isinstance(manifest.get(key, {}), dict):
            raise BundleError(f"{p / MANIFEST}: '{key}' is not an object; the manifest was edited")
    rt = manifest.get("runtime", {})
    for key in ("host_runtime", "name", "device", "provider", "delegate"):
        if not isinstance(rt.get(key), str | None):
            raise BundleError(
                f"{p / MANIFEST}: runtime '{key}' is not a name; the manifest was edited"
            )
    providers = rt.get("providers", [])
    if not isinstance(providers, list) or not all(isinstance(x, str) for x in providers):
        raise BundleError(f"{p / MANIFEST}: runtime 'providers' is not a list of names")
    if not isinstance(rt.get("threads"), int | None) or isinstance(rt.get("threads"), bool):
        raise BundleError(f"{p / MANIFEST}: runtime 'threads' is not a whole number")
    return manifest


def load_bundle(
    path: str | os.PathLike, *, extract_to: str | os.PathLike | None = None
) -> LoadedBundle:
    """Open a bundle folder (or ``.tar.gz``, extracted into `extract_to` or a temporary folder),
    check every file's sha256 against its manifest, and say how to run it here."""
    p = Path(path)
    if p.is_file() and p.name.endswith((".tar.gz", ".tgz")):
        dest = Path(extract_to) if extract_to else Path(tempfile.mkdtemp(prefix="edgekit-bundle-"))
        p = extract_bundle(p, dest)
    manifest = _read_manifest(p)
    files = manifest.get("files") or {}
    for rel, digest in files.items():
        f = (p / rel).resolve()
        if p.resolve() not in f.parents:
            raise BundleError(f"{p / MANIFEST}: lists '{rel}', outside the bundle; refused")
        if not f.is_file():
            raise BundleError(f"{p}: file '{rel}' listed in the manifest is missing")
        if sha256_file(f) != digest:
            raise BundleError(f"{p}: file '{rel}' does not match its sha256 in the manifest; "
                              "the bundle was changed after deploy, refusing to run it")  # fmt: skip
    entry = manifest.get("model", {}).get("entry")
    if not isinstance(entry, str) or entry not in files:
        raise BundleError(f"{p / MANIFEST}: names no checksummed model file")
    rt = manifest.get("runtime", {})
    return LoadedBundle(
        path=p,
        manifest=manifest,
        model_path=p / entry,
        runtime=rt.get("host_runtime") or host_runtime(rt.get("name") or ""),
        device=rt.get("device") or "CPU",
        provider=rt.get("provider"),
        threads=rt.get("threads"),
        providers=list(rt.get("providers", [])),
        delegate=rt.get("delegate"),
    )


def run_bundle(
    path: str | os.PathLike,
    inputs: str | os.PathLike | None = None,
    output: str | os.PathLike | None = None,
    *,
    device: str | None = None,
) -> dict[str, Any]:
    """Check and run a bundle on its runtime (here), on an ``.npz`` of inputs or generated ones.

    Without `device`, the bundle's runtime picks where to run here (the target's
    device when present, else the CPU). Writes the outputs to `output` (``.npz``,
    atomically) when given; returns ``{"outputs": {name: array}, "runtime":...,
    "device":..., "bundle":...}``.
    """
    import io

    import numpy as np

    from edgekit.inputs import generate_inputs
    from edgekit.model import load
    from edgekit.outputs import atomic_write_bytes
    from edgekit.runtimes import get_runtime, open_session

    p = Path(path)
    if p.is_file() and p.name.endswith((".tar.gz", ".tgz")):
        with tempfile.TemporaryDirectory(prefix="edgekit-bundle-") as tmp:
            extracted = extract_bundle(p, tmp)
            return run_bundle(extracted, inputs, output, device=device)
    b = load_bundle(p)
    model = load(b.model_path)
    if device is None:
        dev, provider, _ = get_runtime(b.runtime).host_placement(b.device, b.providers, b.delegate)
    else:
        dev, provider = device, b.provider
    if inputs is not None:
        from edgekit.deploy.runner import to_model_layout

        feeds = _read_npz(Path(inputs), model)
        # Inputs in the source's NCHW layout are fed NHWC to a model that takes that (onnx2tf).
        feeds = dict(zip(feeds, to_model_layout(b.manifest, list(feeds.values())), strict=True))
    else:
        feeds = generate_inputs(model)[0]
    with open_session(model, b.runtime, device=dev, provider=provider, threads=b.threads) as s:
        outs = s.run(feeds)
        used = s.provider or s.device
    if output is not None:
        buf = io.BytesIO()
        np.savez(buf, **outs)
        atomic_write_bytes(output, buf.getvalue())
    return {"outputs": outs, "runtime": b.runtime, "device": used, "bundle": str(b.path)}


def _read_npz(path: Path, model: Model) -> dict[str, Any]:
    import numpy as np

    from edgekit.data.npz import read_npz

    data = read_npz(path)
    names = [t.name for t in model.signature.inputs]
    keys = list(data)
    if set(names) <= set(keys):
        return {n: np.array(data[n]) for n in names}
    if len(names) == 1 and len(keys) == 1:
        return {names[0]: np.array(data[keys[0]])}
    raise InputError(f"{path}: holds arrays {keys}; the model's inputs are {names}")
