"""devices.toml: the SSH devices a bundle can be benchmarked on, each with a pinned host key.

```toml
[devices.pi-lab-3]
host = "127.0.0.1"
port = 22022
user = "bench"
key = "~/.ssh/id_ed25519"
host_key = "ssh-ed25519 AAAA..."   # a known_hosts line without the host name
python = "/usr/bin/python3"
workdir = "~/edgekit-bench"
profile = "rpi4"
```
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import InputError

# key -> (type, required, meaning); the schema every device entry is checked against
FIELDS: dict[str, tuple[type, bool, str]] = {
    "host": (str, True, "the host name or address to connect to"),
    "port": (int, False, "the SSH port (default 22)"),
    "user": (str, True, "the user to log in as"),
    "key": (str, True, "the private key file to log in with"),
    "host_key": (str, False, "the pinned host key: a known_hosts line without the host name"),
    "python": (str, False, "the device's Python (default python3)"),
    "workdir": (str, False, "the folder bundles are pushed into (default ~/edgekit-bench)"),
    "profile": (str, True, "the profile this device stands for"),
    "timeout": (int, False, "seconds a remote benchmark may run (default 600)"),
}
DEFAULT_FILES = ("devices.toml", "~/.config/edgekit/devices.toml")


@dataclass(frozen=True)
class Device:
    """One device of devices.toml, checked."""

    name: str
    host: str
    user: str
    key: str
    profile: str
    source: Path
    port: int = 22
    host_key: str | None = None
    python: str = "python3"
    workdir: str = "~/edgekit-bench"
    timeout: int = 600

    @property
    def remote_workdir(self) -> str:
        """The workdir as SFTP and a login shell both read it (relative to the home folder)."""
        w = self.workdir
        if w == "~":
            return "."
        return w[2:] if w.startswith("~/") else w


def find_devices_file(path: str | os.PathLike | None = None) -> Path:
    """The devices file: `path`, else ./devices.toml, else ~/.config/edgekit/devices.toml."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise InputError(f"--devices {p}: no such file")
        return p
    for candidate in DEFAULT_FILES:
        p = Path(candidate).expanduser()
        if p.is_file():
            return p
    raise InputError(
        "no devices file: write ./devices.toml or ~/.config/edgekit/devices.toml, or give --devices"
    )


def _check(name: str, entry: object, source: Path) -> Device:
    where = f"{source}: devices.{name}"
    if not isinstance(entry, dict):
        raise InputError(f"{where} is not a table; write it as [devices.{name}]")
    unknown = sorted(set(entry) - set(FIELDS))
    if unknown:
        raise InputError(
            f"{where} has unknown key '{unknown[0]}'; the keys are: {', '.join(FIELDS)}"
        )
    for key, (typ, required, meaning) in FIELDS.items():
        if key not in entry:
            if required:
                raise InputError(f"{where} has no '{key}' ({meaning})")
            continue
        value = entry[key]
        if not isinstance(value, typ) or isinstance(value, bool):
            raise InputError(f"{where}.{key} = {value!r} is not {meaning}")
    if not 0 < entry.get("port", 22) < 65536:
        raise InputError(f"{where}.port = {entry['port']} is not a TCP port (1 to 65535)")
    if entry.get("timeout", 600) < 1:
        raise InputError(f"{where}.timeout = {entry['timeout']} must be at least 1 second")
    return Device(name=name, source=source, **entry)


def load_devices(path: str | os.PathLike | None = None) -> dict[str, Device]:
    """Every device of the devices file (see `find_devices_file`), checked against FIELDS."""
    p = find_devices_file(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{p}: is not a readable TOML file ({exc})") from None
    table = data.get("devices")
    if not isinstance(table, dict) or not table:
        raise InputError(f"{p}: has no [devices.NAME] tables")
    return {name: _check(name, entry, p) for name, entry in table.items()}


def get_device(name: str, path: str | os.PathLike | None = None) -> Device:
    """The device called `name`; an unknown name lists the known ones."""
    devices = load_devices(path)
    if name not in devices:
        src = next(iter(devices.values())).source
        raise InputError(f"{src}: no device '{name}'; it names: {', '.join(sorted(devices))}")
    return devices[name]


def bench_device(name: str, path: str | os.PathLike | None = None) -> Device | None:
    """What `bench --device NAME` means: the Device of that name in the devices file (a bench
    over SSH), or None for a runtime device of this machine (CPU, GPU, cuda, ...).

    A name that is both is refused (`--remote NAME` picks the SSH device), and so is one
    that is neither, with the valid names of each kind.
    """
    from edgekit.runtimes import is_runtime_device, runtime_devices

    if path is None and not any(Path(f).expanduser().is_file() for f in DEFAULT_FILES):
        devices: dict[str, Device] = {}
    else:
        devices = load_devices(path)
    local = is_runtime_device(name)
    src = next(iter(devices.values())).source if devices else None
    if name in devices and local:
        raise InputError(
            f"--device {name} names both a runtime device here and device {name} of {src}; "
            f"give --remote {name} to bench on the SSH device, or rename that device to bench here"
        )
    if name in devices:
        return devices[name]
    if local:
        return None
    ssh = f"the devices of {src} ({', '.join(sorted(devices))})" if src else (
        "a device of devices.toml (none found: ./devices.toml, ~/.config/edgekit/devices.toml "
        "or --devices FILE)"
    )  # fmt: skip
    raise InputError(
        f"--device {name} is neither a runtime device ({', '.join(runtime_devices())}) nor {ssh}"
    )


def pin_host_key(device: Device, key_line: str) -> None:
    """Write `key_line` as the device's host_key in its devices file (trust on first use)."""
    text = device.source.read_text(encoding="utf-8")
    header = re.compile(rf"^\[devices\.{re.escape(device.name)}\]\s*$", re.M)
    m = header.search(text)
    if m is None:  # a quoted or dotted name: the file is not ours to rewrite
        raise InputError(
            f"{device.source}: cannot find [devices.{device.name}] to pin its host key; "
            f'add host_key = "{key_line}" to it yourself'
        )
    nxt = re.compile(r"^\[", re.M).search(text, m.end())
    end = nxt.start() if nxt else len(text)
    section = text[m.end() : end]
    line = f'host_key = "{key_line}"'
    if re.search(r"^host_key\s*=.*$", section, re.M):
        section = re.sub(r"^host_key\s*=.*$", line, section, count=1, flags=re.M)
    else:
        section = f"\n{line}" + section
    from edgekit.outputs import atomic_write_text

    atomic_write_text(device.source, text[: m.end()] + section + text[end:])
