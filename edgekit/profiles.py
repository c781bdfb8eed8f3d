"""Hardware profiles: each edge target is a TOML file of data, read and validated here.

A profile says how a model must look to run well on one piece of hardware: the
runtime and its device or execution provider, the model format, the precisions
to try in order of preference, threads, I/O dtypes, runtime-specific
quantization options, an optional compiler step, and hard limits (size, tensor
memory, static shapes, ops).

Shipped profiles live in the repository's top-level ``profiles/`` folder; the
``EDGEKIT_PROFILE_PATH`` environment variable adds folders of the user's own
(``os.pathsep``-separated, searched before the shipped ones, so a user file can
override a shipped name). ``load_profile`` also takes a path to a single
``.toml`` file.

Layout of a profile file (every table key is listed in ``SCHEMA``, in ``edgekit.profile_schema``)::

    name = "rpi4"
    description = "Raspberry Pi 4 Model B ..."
    source = "Raspberry Pi documentation ... (https://...)"

    [target]
    arch = "aarch64"
    runtime = "litert"
    device = "CPU"
    format = "tflite"
    precision = ["int8", "int8-float-fallback", "fp32"]
    threads = 4
    delegate = "xnnpack"

    [quantization]            # optional, runtime-specific
    activation_type = "uint8"

    [compiler]                # optional, a step run after conversion
    name = "edgetpu_compiler"
    command = ["edgetpu_compiler", "--out_dir", "{out_dir}", "{model}"]

    [limits]                  # optional
    max_model_bytes = "1 MiB"
    static_shapes = true
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import ProfileError
from edgekit.profile_schema import (  # re-exported: the vocabularies lived here before
    ARCHES,
    DELEGATES,
    DEVICES,
    DTYPES,
    FORMATS,
    NAME_RE,
    PRECISIONS,
    PROVIDERS,
    QUANT_FORMATS,
    QUANT_TYPES,
    RUNTIME_FORMATS,
    RUNTIME_KEY_DEFAULTS,
    RUNTIME_KEYS,
    RUNTIMES,
    SCHEMA,
    check_table,
    format_bytes,
    hint,
)
from edgekit.vocab import PROFILE_FORMATS, normalize_arch

__all__ = [
    "ARCHES",
    "DELEGATES",
    "DEVICES",
    "DTYPES",
    "FORMATS",
    "PRECISIONS",
    "PROVIDERS",
    "QUANT_FORMATS",
    "QUANT_TYPES",
    "RUNTIMES",
    "RUNTIME_FORMATS",
    "SCHEMA",
    "Compiler",
    "Limits",
    "Profile",
    "Quantization",
    "SHIPPED_DIR",
    "format_bytes",
    "installed_runtimes",
    "list_profiles",
    "load_profile",
    "profile_dirs",
    "validate",
]


def _shipped_dir() -> Path:
    """The repository's `profiles/` in a checkout (or editable install); where a wheel put
    them otherwise (pyproject's data-files: <prefix>/share/edgekit/profiles)."""
    import sysconfig

    here = Path(__file__).resolve()
    if (here.parents[1] / "pyproject.toml").is_file():
        return here.parents[1] / "profiles"
    # <prefix>/lib/pythonX.Y/site-packages/edgekit/profiles.py, then the scheme's data paths
    schemes = (sysconfig.get_default_scheme(), f"{os.name}_user")
    prefixes = [*here.parents[4:5], *(Path(sysconfig.get_path("data", s)) for s in schemes)]
    found = [p / "share" / "edgekit" / "profiles" for p in prefixes]
    return next((d for d in found if d.is_dir()), found[0])


SHIPPED_DIR = _shipped_dir()
ENV_VAR = "EDGEKIT_PROFILE_PATH"

# Python packages that provide each runtime, probed with find_spec (no import).
_RUNTIME_MODULES = {
    "litert": ("ai_edge_litert", "tflite_runtime", "tensorflow"),
    "onnxruntime": ("onnxruntime",),
    "openvino": ("openvino",),
}

# --- the data -------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Hard limits of a target; ``None`` or empty means no limit."""

    max_model_bytes: int | None = None  # model file(s) must fit (flash, storage, SRAM)
    max_arena_bytes: int | None = None  # RAM for tensors (TFLM arena, activations)
    static_shapes: bool = False  # every input dim must be fixed
    unsupported_ops: tuple[str, ...] = ()  # op types the target cannot run
    int8_only: bool = False  # every op must be fully integer-quantized


@dataclass(frozen=True)
class Quantization:
    """Runtime-specific quantization options (ONNX Runtime names); ``None`` = the pass default."""

    activation_type: str | None = None
    weight_type: str | None = None
    per_channel: bool | None = None
    reduce_range: bool | None = None
    quant_format: str | None = None


@dataclass(frozen=True)
class Compiler:
    """A tool run on the converted model; ``{model}`` and ``{out_dir}`` are filled in."""

    name: str
    command: tuple[str, ...]

    def argv(self, model: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> list[str]:
        """The command as an argument list (no shell) for one model and output folder."""
        return [a.format(model=os.fspath(model), out_dir=os.fspath(out_dir)) for a in self.command]


@dataclass(frozen=True)
class Profile:
    """One hardware target. Build it with ``load_profile`` or ``validate``, not by hand."""

    name: str
    description: str
    source: str
    arch: str
    runtime: str
    format: str
    precision: tuple[str, ...]  # allowed precisions, most preferred first
    device: str = "CPU"
    providers: tuple[str, ...] = ()  # ONNX Runtime execution providers, in priority order
    delegate: str | None = None  # LiteRT delegate
    threads: int | None = None  # None: the runtime's default
    # runtime compute precisions of the fp32 model to try (OpenVINO: bf16, f16)
    inference_precision: tuple[str, ...] = ()
    input_dtype: str = "float32"
    output_dtype: str = "float32"
    quantization: Quantization = field(default_factory=Quantization)
    compiler: Compiler | None = None
    limits: Limits = field(default_factory=Limits)
    path: Path | None = field(default=None, compare=False)  # where it was read from

    @property
    def provider(self) -> str | None:
        """The preferred ONNX Runtime execution provider, or None for other runtimes."""
        return self.providers[0] if self.providers else None

    @property
    def summary(self) -> str:
        """The description's first sentence: which hardware this is, for one-line listings."""
        return re.split(r"(?<=\.)\s", self.description.strip(), maxsplit=1)[0].rstrip(".")

    @property
    def device_label(self) -> str:
        """Where it runs: the device, with the ONNX Runtime provider or LiteRT delegate."""
        if self.provider:
            short = self.provider.removesuffix("ExecutionProvider").replace("Tensorrt", "TensorRT")
            return self.device if short == self.device else f"{self.device} ({short})"
        if self.delegate and self.delegate != "none":
            return f"{self.device} ({self.delegate})"
        return self.device

    def runnable_here(
        self,
        machine_arch: str | None = None,
        available_runtimes: Iterable[str] | None = None,
    ) -> bool:
        """Whether this machine can run the profile's models: same arch and runtime installed.

        ``machine_arch`` defaults to ``platform.machine()``; ``available_runtimes``
        defaults to the runtimes whose Python package is installed (probed without
        importing it). The device or provider (GPU, NPU) is not checked here:
        that needs the runtime itself.
        """
        arch = normalize_arch(machine_arch)
        runtimes = (
            set(available_runtimes) if available_runtimes is not None else set(installed_runtimes())
        )
        return arch == self.arch and self.runtime in runtimes

    def to_dict(self) -> dict[str, Any]:
        """The profile in its TOML layout (JSON-safe); ``validate(p.to_dict(), s) == p``."""
        target: dict[str, Any] = {
            "arch": self.arch,
            "runtime": self.runtime,
            "format": self.format,
            "precision": list(self.precision),
            "device": self.device,
            "input_dtype": self.input_dtype,
            "output_dtype": self.output_dtype,
        }
        if self.providers:
            target["providers"] = list(self.providers)
        if self.delegate is not None:
            target["delegate"] = self.delegate
        if self.threads is not None:
            target["threads"] = self.threads
        if self.inference_precision:
            target["inference_precision"] = list(self.inference_precision)
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "target": target,
        }
        quant = {k: v for k, v in vars(self.quantization).items() if v is not None}
        if quant:
            out["quantization"] = quant
        if self.compiler is not None:
            out["compiler"] = {"name": self.compiler.name, "command": list(self.compiler.command)}
        limits = {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in vars(self.limits).items()
            if v is not None
        }
        out["limits"] = limits
        return out


# --- validation -----------------------------------------------------------------


def validate(data: Mapping[str, Any], source: str, *, path: Path | None = None) -> Profile:
    """Check parsed profile data against the schema and build a ``Profile``.

    ``source`` names the data in error messages (usually the file name). Raises
    ``ProfileError`` with one sentence naming the file, the key and what is valid.
    """
    if not isinstance(data, Mapping):
        raise ProfileError(f"{source}: a profile must be a table, got {type(data).__name__}.")
    top = check_table(source, "", data)
    target = check_table(source, "target", top["target"])
    quant = check_table(source, "quantization", top.get("quantization", {}))
    comp = check_table(source, "compiler", top["compiler"]) if "compiler" in top else None
    limits_data = check_table(source, "limits", top.get("limits", {}))

    name = top["name"]
    if not NAME_RE.match(name):
        raise ProfileError(
            f"{source}: 'name' {name!r} must be lowercase letters, digits, '.', '_' or '-'."
        )
    runtime, fmt = target["runtime"], target["format"]
    if fmt not in RUNTIME_FORMATS[runtime]:
        usable = [f for f in RUNTIME_FORMATS[runtime] if f in PROFILE_FORMATS]
        raise ProfileError(
            f"{source}: 'target.format' {fmt!r} cannot be run by runtime {runtime!r}; "
            f"use {' or '.join(repr(f) for f in usable)}."
        )
    precision = target["precision"]
    if not precision:
        raise ProfileError(f"{source}: 'target.precision' must list at least one precision.")
    for key, readers in RUNTIME_KEYS.items():
        if key in target and runtime not in readers:
            raise ProfileError(
                f"{source}: 'target.{key}' applies only to runtime "
                f"{' or '.join(repr(r) for r in readers)}, not {runtime!r}; remove it."
            )
    limits = Limits(**limits_data)
    if limits.int8_only and precision != ("int8",):
        raise ProfileError(
            f"{source}: 'limits.int8_only' is true, so 'target.precision' must be "
            f'["int8"], got {list(precision)}.'
        )
    if comp is not None:
        if not comp["command"]:
            raise ProfileError(f"{source}: 'compiler.command' must not be empty.")
        if not any("{model}" in a for a in comp["command"]):
            raise ProfileError(
                f"{source}: 'compiler.command' must contain the placeholder '{{model}}'."
            )
    providers = target.get("providers") or RUNTIME_KEY_DEFAULTS.get((runtime, "providers"), ())

    return Profile(
        name=name,
        description=top["description"],
        source=top["source"],
        arch=target["arch"],
        runtime=runtime,
        format=fmt,
        precision=precision,
        device=target.get("device", "CPU"),
        providers=providers,
        delegate=target.get("delegate"),
        threads=target.get("threads"),
        inference_precision=target.get("inference_precision", ()),
        input_dtype=target.get("input_dtype", "float32"),
        output_dtype=target.get("output_dtype", "float32"),
        quantization=Quantization(**quant),
        compiler=Compiler(comp["name"], comp["command"]) if comp is not None else None,
        limits=limits,
        path=path,
    )


# --- files and search path ------------------------------------------------------


def _toml_loads(text: str) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib.loads(text)


def _read_file(path: Path, label: str) -> Profile:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(f"profile file '{path}' does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{label}: cannot read the profile file ({exc}).") from None
    try:
        data = _toml_loads(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError; its text ends "(at line L, column C)"
        raise ProfileError(f"{label}: invalid TOML: {exc}.") from None
    except RecursionError:
        raise ProfileError(f"{label}: invalid TOML: nested too deeply to be a profile.") from None
    return validate(data, label, path=path)


def profile_dirs() -> list[Path]:
    """Folders searched for profiles by name: ``EDGEKIT_PROFILE_PATH`` ones first, then shipped."""
    dirs = []
    for entry in os.environ.get(ENV_VAR, "").split(os.pathsep):
        if not entry.strip():
            continue
        folder = Path(entry).expanduser()
        if not folder.is_dir():
            raise ProfileError(f"{ENV_VAR} folder '{folder}' does not exist or is not a folder.")
        dirs.append(folder)
    dirs.append(SHIPPED_DIR)
    return dirs


def _profile_files() -> dict[str, Path]:
    """name -> file, the first folder in ``profile_dirs()`` winning."""
    found: dict[str, Path] = {}
    for folder in profile_dirs():
        if not folder.is_dir():
            continue
        for file in sorted(folder.glob("*.toml")):
            found.setdefault(file.stem, file)
    return found


def _label(path: Path) -> str:
    return f"profiles/{path.name}" if path.parent == SHIPPED_DIR else str(path)


def _load_named_file(name: str, path: Path) -> Profile:
    profile = _read_file(path, _label(path))
    if profile.name != name:
        raise ProfileError(
            f"{_label(path)}: 'name' is {profile.name!r} but the file is named {name!r}; "
            "make them match."
        )
    return profile


def _looks_like_path(text: str) -> bool:
    return text.endswith(".toml") or "/" in text or os.sep in text


def load_profile(name_or_path: str | os.PathLike[str]) -> Profile:
    """Load a profile by shipped name (``"rpi4"``) or from the path of a user's ``.toml`` file."""
    text = os.fspath(name_or_path)
    if isinstance(name_or_path, os.PathLike) or _looks_like_path(text):
        path = Path(text).expanduser()
        if path.is_dir():
            raise ProfileError(f"profile path '{path}' is a folder, not a .toml file.")
        return _read_file(path, str(path))
    files = _profile_files()
    if text in files:
        return _load_named_file(text, files[text])
    names = sorted(files)
    kind = "Available" if os.environ.get(ENV_VAR, "").strip() else "Shipped"
    raise ProfileError(f"unknown profile '{text}'{hint(text, names, f'{kind} profiles')}")


def list_profiles() -> list[Profile]:
    """Every profile found by name (user folders first, then shipped), sorted by name."""
    return [_load_named_file(name, path) for name, path in sorted(_profile_files().items())]


def installed_runtimes() -> list[str]:
    """Runtimes whose Python package is installed, probed without importing any of them."""
    found = []
    for runtime, modules in _RUNTIME_MODULES.items():
        for module in modules:
            try:
                if importlib.util.find_spec(module) is not None:
                    found.append(runtime)
                    break
            except (ImportError, ValueError):
                continue
    return found
