"""The sweep file: its schema, and its expansion into a grid of jobs with stable ids.

A sweep file names models, profiles and configurations (the keywords `optimize`
takes); every (model, profile, configuration) cell is one job. A job's id hashes
what decides its result, so a rerun finds the jobs it already finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import InputError

# configuration key -> (accepted types, what it means); each is an `optimize` keyword.
CONFIG_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "name": ((str,), "a short label for tables and plots"),
    "quantize": ((str,), "precision to try (none, fp32, fp16, dynamic, int8, ..., auto)"),
    "prune": ((float, int), "fraction of weights to prune, between 0 and 1"),
    "structured": ((bool,), "structured (channel) pruning instead of magnitude"),
    "threads": ((int,), "inference threads of the timed step (default 1)"),
    "max_accuracy_drop": ((float, int), "accuracy budget in points"),
    "calib_samples": ((int,), "calibration samples"),
    "max_float_layers": ((int,), "layers int8 may keep in float"),
    "graph_opt": ((bool,), "graph optimizations before quantizing"),
    "finetune_epochs": ((int,), "fine-tuning epochs after pruning"),
    "seed": ((int,), "seed of generated data"),
    "device": ((str,), "an SSH device of the devices file that times the job's bundle"),
}
# `device` at the top applies to every configuration that names none; `devices_file` is the
# devices.toml (relative to the sweep file; default ./devices.toml, then ~/.config/edgekit/).
TOP_KEYS = {"models", "profiles", "configs", "bundle", "calib_data", "eval_data", "device",
            "devices_file"}  # fmt: skip

# The range of every numeric configuration key: (low, high, low_open, high_open). Threads
# follow `edgekit.cli.params`' rule: at most 4x this machine's logical cores, since a
# sweep times its jobs here.
_MAX_THREADS = 4 * (os.cpu_count() or 1)
RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "prune": (0.0, 1.0, True, True),
    "threads": (1, _MAX_THREADS, False, False),
    "max_accuracy_drop": (0.0, 100.0, False, False),
    "calib_samples": (1, 1_000_000, False, False),
    "max_float_layers": (0, 10_000, False, False),
    "finetune_epochs": (1, 10_000, False, False),
    "seed": (0, 2**32 - 1, False, False),
}


def _check_range(where: str, key: str, value: float) -> None:
    low, high, low_open, high_open = RANGES[key]
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high or value != value:  # NaN compares false both ways
        span = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise InputError(f"{where}.{key} = {value!r} is out of range: {span}")


@dataclass(frozen=True)
class Job:
    """One cell of the grid: a model, a profile and one configuration."""

    id: str
    model: str
    model_sha256: str
    profile: str
    config: dict[str, Any]
    bundle: bool = True
    calib_data: str | None = None
    eval_data: str | None = None
    devices_file: str | None = None  # where config["device"] is defined (checked on reading)

    @property
    def label(self) -> str:
        return f"{Path(self.model).name} / {self.profile} / {self.config['name']}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Sweep:
    """A checked sweep file and the jobs it expands to, in grid order."""

    path: Path | None
    jobs: list[Job] = field(default_factory=list)


def job_id(model_sha256: str, profile: str, config: dict[str, Any], version: str) -> str:
    """Hash of what decides a job's result: the model's bytes, profile, configuration, edgekit."""
    key = json.dumps(
        {"model": model_sha256, "profile": profile, "config": config, "edgekit": version},
        sort_keys=True,
    )
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _where(source: str, key: str) -> str:
    return f"{source}: '{key}'"


def _check_config(i: int, cfg: Any, source: str) -> dict[str, Any]:
    where = f"{source}: configs[{i}]"
    if not isinstance(cfg, dict):
        raise InputError(f"{where} is not a table; write it as a [[configs]] section")
    unknown = sorted(set(cfg) - set(CONFIG_KEYS))
    if unknown:
        raise InputError(
            f"{where} has unknown key '{unknown[0]}'; the keys are: {', '.join(CONFIG_KEYS)}"
        )
    for key, value in cfg.items():
        types, meaning = CONFIG_KEYS[key]
        # bool is an int in Python; a number key must not take true/false
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise InputError(f"{where}.{key} = {value!r} is not {meaning}")
    if "prune" in cfg and not 0.0 < float(cfg["prune"]) < 1.0:
        raise InputError(f"{where}.prune = {cfg['prune']} must be between 0 and 1")
    for key in sorted(set(cfg) & set(RANGES)):
        _check_range(where, key, cfg[key])
    out = dict(cfg)
    out.setdefault("name", f"config{i}")
    return out


def _check_devices(
    data: dict[str, Any], configs: list[dict[str, Any]], base: Path, bundle: bool, source: str
) -> str | None:
    """Give every configuration the top-level `device` it lacks, and check each device
    name against the devices file now; returns that file's path (None when no job has one)."""
    top = data.get("device")
    if top is not None and not isinstance(top, str):
        raise InputError(f"{_where(source, 'device')} must be the name of a device")
    own = {i for i, c in enumerate(configs) if "device" in c}  # the others inherit `device`
    if top is not None:
        for cfg in configs:
            cfg.setdefault("device", top)
    named = [(i, c["device"]) for i, c in enumerate(configs) if "device" in c]
    if not named:
        return None
    if not bundle:
        raise InputError(
            f"{_where(source, 'device')}: a device times the job's bundle; set bundle = true"
        )
    from edgekit.remote.devices import DEFAULT_FILES, load_devices

    file = data.get("devices_file")
    if file is not None:
        if not isinstance(file, str) or not (path := base / os.path.expanduser(file)).is_file():
            raise InputError(f"{_where(source, 'devices_file')} = {file!r} is not a file")
    elif not any(Path(f).expanduser().is_file() for f in DEFAULT_FILES):
        raise InputError(
            f"{source}: 'device' needs a devices file: write ./devices.toml or "
            "~/.config/edgekit/devices.toml, or set devices_file"
        )
    devices = load_devices(None if file is None else path)
    src = next(iter(devices.values())).source.resolve()
    for i, name in named:
        if name not in devices:
            key = f"configs[{i}].device" if i in own else "device"
            raise InputError(
                f"{source}: {key} = {name!r} is not a device of {src}; it names: "
                f"{', '.join(sorted(devices))}"
            )
    return str(src)


def _str_list(data: dict[str, Any], key: str, source: str) -> list[str]:
    value = data.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InputError(f"{_where(source, key)} must be a non-empty list of strings")
    return value


def expand(data: dict[str, Any], base: Path, source: str = "sweep") -> list[Job]:
    """The jobs of a parsed sweep file; model and data paths are relative to `base`."""
    from edgekit import __version__
    from edgekit.model import load
    from edgekit.profiles import load_profile

    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise InputError(
            f"{source}: unknown key '{unknown[0]}'; the keys are: {', '.join(sorted(TOP_KEYS))}"
        )
    models = _str_list(data, "models", source)
    profiles = _str_list(data, "profiles", source)
    raw_configs = data.get("configs", [{"name": "default"}])
    if not isinstance(raw_configs, list) or not raw_configs:
        raise InputError(f"{_where(source, 'configs')} must be one or more [[configs]] tables")
    configs = [_check_config(i, c, source) for i, c in enumerate(raw_configs)]
    names = [c["name"] for c in configs]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise InputError(f"{source}: two configs are named '{dup}'; give each its own name")
    bundle = data.get("bundle", True)
    if not isinstance(bundle, bool):
        raise InputError(f"{_where(source, 'bundle')} must be true or false")
    for name in profiles:
        load_profile(name)  # an unknown profile is a user error now, not in every job
    devices_file = _check_devices(data, configs, base, bundle, source)
    data_paths = {}
    for key in ("calib_data", "eval_data"):
        if key in data:
            data_paths[key] = str((base / str(data[key])).resolve())

    jobs = []
    for m in models:
        path = (base / os.path.expanduser(m)).resolve()
        if not path.exists():
            raise InputError(f"{source}: model '{m}' does not exist (looked at {path})")
        sha = load(path).sha256
        for prof in profiles:
            for cfg in configs:
                jid = job_id(sha, prof, {**cfg, **data_paths, "bundle": bundle}, __version__)
                jobs.append(Job(jid, str(path), sha, prof, cfg, bundle, **data_paths,
                                devices_file=devices_file))  # fmt: skip
    return jobs


def load_sweep(path: str | os.PathLike) -> Sweep:
    """Read and check a sweep TOML file and expand it to its jobs."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{p}: no such sweep file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{p}: is not a readable TOML file ({exc})") from None
    return Sweep(p, expand(data, p.parent, str(p)))
