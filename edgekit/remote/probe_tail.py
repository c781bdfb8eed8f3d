"""The end of the fingerprint probe run on a device: appended to edgekit/devices.py's source
(stdlib only) and fed to the device's Python on stdin, it prints one JSON object.

Standalone on purpose: the device has no edgekit; `cpu`, `memory_bytes` and
`governor` are the functions of edgekit/devices.py above it. PACKAGES is
replaced by the host's list before sending.
"""

# ruff: noqa: F821  (cpu, memory_bytes, governor come from the devices.py source above)
import json as _json
import platform as _platform
from importlib.metadata import PackageNotFoundError as _Missing
from importlib.metadata import version as _version

PACKAGES: list = []


def _versions() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = _version(name)
        except _Missing:
            out[name] = None
    return out


def _load() -> list | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


if __name__ == "__main__":
    print(
        _json.dumps(
            {
                "cpu": cpu(),
                "memory_bytes": memory_bytes(),
                "governor": governor(),
                "load_avg": _load(),
                "os": f"{_platform.system()} {_platform.release()}",
                "python": _platform.python_version(),
                "hostname": _platform.node(),
                "packages": _versions(),
            }
        )
    )
