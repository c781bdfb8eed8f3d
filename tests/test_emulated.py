"""The emulated aarch64 device: an rpi4 bundle's run.py under qemu-user, outputs against the host's.

Needs Debian's qemu-user-static (which .ci/run installs) and, on first use, the
Debian arm64 packages and aarch64 wheels that make the sysroot (cached in
$EDGEKIT_CACHE, default ~/.cache/edgekit); skips with the reason where either is
missing. The first run downloads ~35 MB and takes ~40 s; later ones ~15 s.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import assert_user_error, invoke_cli, run_cli, tiny_onnx

from edgekit.deploy import deploy
from edgekit.emulate import verify_emulated
from edgekit.emulate.sysroot import QEMU, Sysroot, prepare
from edgekit.errors import BundleError, MissingDependencyError

MODEL = (
    Path(__file__).resolve().parents[1].parent / "shared" / "models" / "hello_world_float.tflite"
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not any(shutil.which(q) for q in QEMU):
        pytest.skip("qemu-aarch64-static is absent (apt-get install qemu-user-static)")
    if not MODEL.is_file():
        pytest.skip(f"{MODEL} is absent (it exists in CI, not in a user's clone)")
    b = deploy(MODEL, "rpi4", tmp_path_factory.mktemp("emu") / "hw", precision="fp32",
               measure=False).path  # fmt: skip
    return b


@pytest.fixture(scope="module")
def sysroot(bundle: Path) -> Sysroot:
    reqs = [ln for ln in (bundle / "requirements.txt").read_text().splitlines() if ln.strip()]
    try:
        return prepare(reqs)
    except MissingDependencyError as exc:
        pytest.skip(f"the aarch64 sysroot cannot be made here: {exc}")


def test_guest_is_aarch64_and_sees_a_cortex_a72(sysroot: Sysroot) -> None:
    code = "import platform; print(platform.machine()); print(open('/proc/cpuinfo').read())"
    r = subprocess.run(sysroot.command("-c", code), env=sysroot.env(), capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    arch, _, cpuinfo = r.stdout.partition("\n")
    assert arch == "aarch64"
    assert (
        "CPU part\t: 0xd08" in cpuinfo and "Raspberry Pi 4" in cpuinfo
    )  # the fake, not the host's


def test_rpi4_bundle_runs_under_emulation_with_the_hosts_outputs(
    bundle: Path, sysroot: Sysroot
) -> None:
    check = verify_emulated(bundle)
    assert check.passed, check.summary()
    assert check.parity["max_abs_error"] <= 1e-5 and check.parity["n_samples"] == 1
    assert "ai-edge-litert" in check.packages and check.python.startswith("3.")
    assert "latency" not in str(check.to_dict()).lower()  # emulated timings are never latency


def test_cli_deploy_verify_on_emulated_aarch64(
    bundle: Path, sysroot: Sysroot, tmp_path: Path
) -> None:
    r = run_cli("deploy", str(MODEL), "--profile", "rpi4", "--precision", "fp32", "--no-measure",
                "--out", str(tmp_path / "b"), "--verify-on", "emulated-aarch64")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "emulated-aarch64 (qemu-user" in r.stdout and "outputs match the host's" in r.stdout


def test_a_bundle_for_another_arch_is_refused(bundle: Path, tmp_path: Path) -> None:
    b = deploy(MODEL, "x86-avx2", tmp_path / "x86", precision="fp32", measure=False).path
    with pytest.raises(BundleError, match=r"for x86-avx2 \(x86_64\), not aarch64"):
        verify_emulated(b)


def test_verify_on_refuses_a_non_aarch64_profile_before_building(tmp_path: Path) -> None:
    # no qemu needed: the refusal comes before any conversion, and nothing is written
    model = tiny_onnx(tmp_path / "tiny.onnx")
    out = tmp_path / "bundle"
    r = invoke_cli("deploy", str(model), "--profile", "x86-avx2", "--out", str(out),
                   "--verify-on", "emulated-aarch64")  # fmt: skip
    assert_user_error(r, "needs an aarch64 profile, and x86-avx2 is x86_64")
    assert not out.exists()


def test_verify_on_without_qemu_names_the_debian_package(tmp_path: Path) -> None:
    model = tiny_onnx(tmp_path / "tiny.onnx")
    out = tmp_path / "bundle"
    empty = tmp_path / "bin"
    empty.mkdir()
    r = invoke_cli("deploy", str(model), "--profile", "rpi4", "--out", str(out),
                   "--verify-on", "emulated-aarch64", env={"PATH": str(empty)})  # fmt: skip
    assert_user_error(r, "qemu-aarch64-static is not installed", "qemu-user-static")
    assert not out.exists()
