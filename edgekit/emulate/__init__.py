"""The emulated aarch64 device: proof that a bundle runs on aarch64, and computes what it does here.

`verify_emulated(bundle)` runs the bundle's own run.py on an aarch64 Python under
qemu-user (`edgekit.emulate.sysroot`: Debian arm64 packages and the runtime's
aarch64 wheels, made on first use, nothing installed into this system) and
compares its outputs with the host's on the same inputs, within the tolerance of
the bundle's precision. Emulated timings mean nothing: the check reports how
long it took as wall time of the check, never as a latency.

What `edgekit deploy --verify-on emulated-aarch64` calls.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.emulate.sysroot import Sysroot, prepare

__all__ = ["TARGETS", "EmulatedCheck", "check_prerequisites", "verify_emulated"]

# --verify-on choices: emulated device -> the arch a bundle's profile must name.
TARGETS = {"emulated-aarch64": "aarch64"}


@dataclass
class EmulatedCheck:
    """How the bundle's outputs under emulation compare with the host's."""

    target: str
    passed: bool
    parity: dict[str, Any]
    qemu: str
    python: str
    packages: dict[str, str]  # the aarch64 wheels the guest ran with
    check_wall_s: float  # the whole check under emulation; not a latency of the model

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def summary(self) -> str:
        pkgs = ", ".join(f"{k} {v}" for k, v in self.packages.items())
        verdict = "outputs match the host's" if self.passed else "outputs DIFFER from the host's"
        p = self.parity
        return (
            f"{self.target} (qemu-user, Python {self.python}, {pkgs}): {verdict}, "
            f"max |err| {p['max_abs_error']:.3g}, cosine {p['cosine']:.6f}"
            + ("" if self.passed else f" ({p['reason']})")
        )


def _requirements(bundle: Path) -> list[str]:
    path = bundle / "requirements.txt"
    if not path.is_file():
        from edgekit.errors import BundleError

        raise BundleError(f"{bundle}: no requirements.txt, so the runtime to emulate is unknown")
    lines = (ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines())
    return [ln for ln in lines if ln]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _wheels(sysroot: Sysroot, requirements: list[str]) -> dict[str, str]:
    """Versions of the required distributions among the guest's unpacked wheels."""
    wanted = {_norm(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]) for r in requirements}
    out = {}
    for info in sorted((sysroot.site or Path("/nonexistent")).glob("*.dist-info")):
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        if _norm(name) in wanted:
            out[_norm(name)] = version
    return out


def _qemu_version(qemu: str) -> str:
    r = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=30)
    first = (r.stdout.strip().splitlines() or ["qemu"])[0]
    return first.replace("qemu-aarch64 version ", "")


def check_prerequisites(target: str, profile: str | os.PathLike | Any) -> None:
    """Refuse `--verify-on target` for `profile` before anything is built: the profile must be
    for the target's arch and qemu-user must be installed (the sysroot is made later, cached).

    `profile` is what deploy takes: a name, a .toml path, a Profile, or "auto" (which picks
    one of this machine's profiles, so this machine's arch).
    """
    from edgekit.emulate.sysroot import find_qemu
    from edgekit.errors import InputError
    from edgekit.vocab import normalize_arch

    if target not in TARGETS:
        raise InputError(f"--verify-on {target!r} is not one of: {', '.join(TARGETS)}")
    if isinstance(profile, str) and profile == "auto":
        name, arch = "auto", normalize_arch()
    else:
        from edgekit.profiles import Profile, load_profile

        prof = profile if isinstance(profile, Profile) else load_profile(profile)
        name, arch = prof.name, normalize_arch(prof.arch)
    if arch != TARGETS[target]:
        raise InputError(
            f"--verify-on {target} needs an {TARGETS[target]} profile, and {name} is {arch}; "
            f"choose one such as --profile rpi4, or leave --verify-on out"
        )
    find_qemu()


def verify_emulated(
    bundle: str | os.PathLike,
    target: str = "emulated-aarch64",
    *,
    tolerance: float | None = None,
    download: bool = True,
    timeout_s: int = 900,
) -> EmulatedCheck:
    """Run the deploy bundle folder `bundle` under emulation and compare with the host's outputs.

    The bundle's profile must be for the target's arch. `tolerance` overrides the
    absolute bound of the bundle precision's tolerance; `download=False` uses only
    the cached sysroot and wheels. Raises a BundleError for a bundle of another
    arch, MissingDependencyError when qemu or the sysroot is missing, and
    VerificationError when run.py fails under emulation; a mismatch is returned
    (`passed` False), not raised.

    Example:
        check = verify_emulated("bundle/")
        print(check.summary())
    """
    import numpy as np

    from edgekit.deploy import load_bundle, run_bundle
    from edgekit.errors import BundleError, InputError, VerificationError
    from edgekit.inputs import generate_inputs
    from edgekit.model import load
    from edgekit.verify import compare_arrays
    from edgekit.vocab import normalize_arch

    if target not in TARGETS:
        raise InputError(f"--verify-on {target!r} is not one of: {', '.join(TARGETS)}")
    b = load_bundle(bundle)
    prof = b.manifest.get("profile") or {}
    named = (prof.get("target") or {}).get("arch") or prof.get("arch")
    arch = normalize_arch(str(named)) if named else ""
    if arch != TARGETS[target]:
        raise BundleError(
            f"{b.path}: the bundle is for {prof.get('name')} ({arch or 'no arch'}), "
            f"not {TARGETS[target]}; {target} runs {TARGETS[target]} bundles only"
        )
    requirements = _requirements(b.path)
    sysroot = prepare(requirements, download=download)
    model = load(b.model_path)
    feeds = generate_inputs(model, count=1, seed=0)[0]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgekit-emulated-") as tmp:
        inp, out = Path(tmp) / "input.npz", Path(tmp) / "output.npz"
        np.savez(inp, **feeds)
        host = list(run_bundle(b.path, inp)["outputs"].values())
        argv = sysroot.command(str(b.path / "run.py"), "--input", str(inp), "--output", str(out))
        try:
            r = subprocess.run(argv, cwd=tmp, env=sysroot.env(), capture_output=True, text=True,
                               timeout=timeout_s)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise VerificationError(
                f"{b.path}: run.py did not finish within {timeout_s} s under {target}"
            ) from None
        if r.returncode != 0 or not out.is_file():
            lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith("INFO:")]
            why = lines[-1] if lines else f"exit status {r.returncode}"
            raise VerificationError(f"{b.path}: run.py failed under {target}: {why}")
        with np.load(out, allow_pickle=False) as data:
            guest = [data[k] for k in data.keys()]
    wall = time.perf_counter() - started
    parity = compare_arrays([host], [guest], model.signature,
                            precision=b.manifest.get("precision", "fp32"), tolerance=tolerance)  # fmt: skip
    return EmulatedCheck(
        target=target,
        passed=parity.passed,
        parity=parity.to_dict(),
        qemu=_qemu_version(sysroot.qemu),
        python=sysroot.python_version,
        packages=_wheels(sysroot, requirements),
        check_wall_s=round(wall, 2),
    )
