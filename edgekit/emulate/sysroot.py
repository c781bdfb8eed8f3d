"""An aarch64 Python to run bundles under qemu-user: Debian arm64 packages and aarch64 wheels.

Nothing is installed into this machine's system. Debian's arm64 packages for
Python are fetched with apt's download-only mode against a private apt state
(its own package lists, cache and an empty dpkg status, so apt resolves the
whole dependency closure and touches nothing of the host's) and unpacked with
`dpkg-deb -x` into ``<cache>/aarch64/root``. The bundle's requirements come as
aarch64 wheels (`pip download --platform manylinux_2_27_aarch64`), unpacked into
a site folder per requirements set. qemu's ``-L root`` makes the guest look up
absolute paths inside the root first, which is also how the guest sees a fake
Cortex-A72 ``/proc/cpuinfo``: LiteRT's CPU detection reads the host's otherwise
and crashes under emulation.

The cache lives in ``$EDGEKIT_CACHE`` (default ``~/.cache/edgekit``); a folder is
complete once its ``.complete`` marker is written, so an interrupted download is
redone, never used half-made.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import MissingDependencyError

# What the guest needs from Debian: the interpreter, its standard library, and the C++
# runtime that the runtimes' wheels link against (the rest comes as dependencies).
DEBIAN_PACKAGES = ("python3-minimal", "libpython3-stdlib", "libstdc++6")
WHEEL_PLATFORMS = ("manylinux_2_27_aarch64", "manylinux_2_28_aarch64", "manylinux2014_aarch64")
QEMU = ("qemu-aarch64-static", "qemu-aarch64")
COMPLETE = ".complete"

# A Raspberry Pi 4's /proc/cpuinfo (4 x Cortex-A72, part 0xd08), as the guest reads it.
_CORE = """processor\t: {i}
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3
"""
CPUINFO = "\n".join(_CORE.format(i=i) for i in range(4)) + (
    "\nHardware\t: BCM2835\nRevision\t: c03111\nModel\t\t: Raspberry Pi 4 Model B Rev 1.1\n"
)


@dataclass(frozen=True)
class Sysroot:
    """An aarch64 root to run Python in under qemu: `command()` starts its interpreter."""

    qemu: str
    root: Path
    python: str  # the guest interpreter, relative to root (usr/bin/python3.11)
    site: Path | None = None  # the unpacked wheels, put on the guest's PYTHONPATH

    @property
    def python_version(self) -> str:
        return self.python.rsplit("python", 1)[1]

    def command(self, *args: str) -> list[str]:
        """argv running the guest Python on `args` (script and its arguments)."""
        return [self.qemu, "-L", str(self.root), str(self.root / self.python), *args]

    def env(self) -> dict[str, str]:
        """The guest's environment: this one without the host's Python settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["PYTHONNOUSERSITE"] = "1"
        if self.site is not None:
            env["PYTHONPATH"] = str(self.site)
        return env


def cache_dir() -> Path:
    """Where the sysroot and wheels are kept: $EDGEKIT_CACHE, else ~/.cache/edgekit."""
    base = os.environ.get("EDGEKIT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "edgekit"
    )
    return Path(base) / "aarch64"


def find_qemu() -> str:
    """The qemu-user binary for aarch64, or a MissingDependencyError naming the package."""
    for name in QEMU:
        path = shutil.which(name)
        if path:
            return path
    raise MissingDependencyError(
        "qemu-aarch64-static is not installed; install Debian's qemu-user-static "
        "(apt-get install qemu-user-static) to run aarch64 bundles under emulation"
    )


def _run(argv: list[str], what: str, timeout: int = 900) -> None:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise MissingDependencyError(
            f"{argv[0]} is not on PATH; making the aarch64 sysroot needs Debian's apt and dpkg"
        ) from None
    except subprocess.TimeoutExpired:
        raise MissingDependencyError(
            f"{what} took over {timeout} s; is a package index reachable?"
        ) from None
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or [f"exit {r.returncode}"]
        raise MissingDependencyError(f"{what} failed: {tail[0]}")


def _apt(cache: Path) -> list[str]:
    """apt-get with a private state: arm64 lists, cache and an empty dpkg status (nothing
    installed, so the whole dependency closure is downloaded and the host's is untouched)."""
    state = cache / "apt"
    for sub in ("lists/partial", "archives/partial"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    (state / "status").touch()
    return ["apt-get", "-q", "-o", "APT::Architecture=arm64", "-o", "APT::Architectures::=arm64",
            "-o", f"Dir::State::Lists={state / 'lists'}", "-o", f"Dir::State::status={state / 'status'}",
            "-o", f"Dir::Cache={state}", "-o", f"Dir::Cache::archives={state / 'archives'}",
            "-o", "Debug::NoLocking=1"]  # fmt: skip


def _publish(tmp: Path, dest: Path) -> None:
    if (dest / COMPLETE).is_file():  # another process finished the same folder first
        shutil.rmtree(tmp)
        return
    (tmp / COMPLETE).write_text("ok\n")
    if dest.exists():
        shutil.rmtree(dest)  # an earlier, unfinished attempt (no marker)
    os.replace(tmp, dest)


def make_root(cache: Path, download: bool = True) -> tuple[Path, str]:
    """The unpacked Debian arm64 root and its interpreter's path inside it."""
    root = cache / "root"
    if not (root / COMPLETE).is_file():
        if not download:
            raise MissingDependencyError(f"no aarch64 sysroot in {cache}, and downloads are off")
        apt = _apt(cache)
        _run([*apt, "update"], "apt-get update (arm64 package lists)")
        _run([*apt, "install", "-y", "--download-only", "--no-install-recommends",
              *DEBIAN_PACKAGES], "apt-get download of Python's arm64 packages")  # fmt: skip
        tmp = Path(tempfile.mkdtemp(prefix="root.partial-", dir=cache))
        for deb in sorted((cache / "apt" / "archives").glob("*.deb")):
            _run(["dpkg-deb", "-x", str(deb), str(tmp)], f"dpkg-deb -x {deb.name}")
        (tmp / "proc").mkdir(exist_ok=True)
        (tmp / "proc" / "cpuinfo").write_text(CPUINFO)
        _publish(tmp, root)
    found = sorted(glob.glob(str(root / "usr/bin/python3.[0-9]*")), key=len)
    if not found:
        raise MissingDependencyError(f"{root} holds no usr/bin/python3.X; remove it to remake it")
    return root, os.path.relpath(found[0], root)


def make_site(cache: Path, requirements: list[str], python_version: str,
              download: bool = True) -> Path:  # fmt: skip
    """`requirements` as aarch64 wheels for `python_version`, unpacked into one folder."""
    key = hashlib.sha256("\n".join([python_version, *sorted(requirements)]).encode()).hexdigest()
    site = cache / "site" / key[:16]
    if (site / COMPLETE).is_file():
        return site
    if not download:
        raise MissingDependencyError(f"no aarch64 wheels for {requirements} in {cache}")
    wheels = cache / "wheels" / key[:16]
    wheels.mkdir(parents=True, exist_ok=True)
    platforms = [a for p in WHEEL_PLATFORMS for a in ("--platform", p)]
    _run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:",
          *platforms, "--python-version", python_version, "--implementation", "cp",
          "-d", str(wheels), *requirements], f"pip download of aarch64 wheels for {requirements}")  # fmt: skip
    site.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="site.partial-", dir=site.parent))
    for whl in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(whl) as z:
            z.extractall(tmp)
    _publish(tmp, site)
    return site


def prepare(requirements: list[str], *, download: bool = True) -> Sysroot:
    """An aarch64 Python under qemu with `requirements` importable, made on first use.

    `download=False` only uses what the cache holds (MissingDependencyError otherwise).
    """
    qemu = find_qemu()
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    root, python = make_root(cache, download)
    version = python.rsplit("python", 1)[1]
    return Sysroot(qemu, root, python, make_site(cache, requirements, version, download))
