"""Remote benchmarks over SSH against a real OpenSSH server on 127.0.0.1 started by the test.

The server runs as a subprocess on a free high port with host and client keys made
in the test's folder; logins are as a non-root user (created here when running as
root, else the current user). Skips with a reason where sshd is absent.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from edgekit.errors import BundleError, InputError
from tests.conftest import assert_user_error, run_cli, tiny_onnx
from tests.sshd import SSHD, SSHDUnavailable, devices_toml, keygen, loopback_sshd

pytestmark = [
    pytest.mark.skipif(
        not SSHD.is_file(), reason="OpenSSH server absent (apt-get install openssh-server)"
    ),
    pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen absent"),
]
asyncssh = pytest.importorskip("asyncssh", reason="asyncssh not installed (edgekit[remote])")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    """An sshd on 127.0.0.1:<free port>; yields the facts a devices.toml needs."""
    try:
        with loopback_sshd(tmp_path_factory.mktemp("sshd")) as facts:
            yield facts
    except SSHDUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgekit.deploy import deploy

    tmp = tmp_path_factory.mktemp("bundle")
    model = tiny_onnx(tmp / "tiny.onnx", width=64, layers=3)
    return deploy(model, "x86-avx2", tmp / "bundle", measure=False, threads=1).path


def test_bench_on_device_gives_a_report_with_the_device_environment(sshd, bundle, tmp_path):
    from edgekit.bench import validate_report
    from edgekit.remote import remote_benchmark

    devices = devices_toml(tmp_path / "devices.toml", sshd, sshd["host_key"])
    first = remote_benchmark(bundle, "loop", devices_file=devices, runs=50, warmup=5)
    d = validate_report(first.to_dict())
    assert d["latency_ms"]["n"] == 50 and len(d["samples_ns"]) == 50
    assert d["environment"]["arch"] == "x86_64"
    assert d["environment"]["packages"]["onnxruntime"] is not None
    remote = d["remote"]
    assert remote["pushed"] is True and remote["device"] == "loop"
    assert not any("was made for profile" in w for w in d["warnings"])
    for key in ("connect_ms", "fingerprint_ms", "push_ms", "run_round_trip_ms"):
        assert remote[key] > 0
    # on-device samples only: the SSH round trip is far longer than their sum
    assert sum(d["samples_ns"]) / 1e6 < remote["run_round_trip_ms"]
    assert (
        sshd["local_workdir"] / remote["bundle_dir"].split("/")[-1] / ".edgekit-complete"
    ).is_file()
    second = remote_benchmark(bundle, "loop", devices_file=devices, runs=20, warmup=2)
    assert second["remote"]["pushed"] is False  # the checksum-named folder is already there


def test_cli_bench_device_names_an_ssh_device(sshd, bundle, tmp_path):
    # `--device NAME` as the issue spells it; `--remote NAME` is its explicit alias
    devices = devices_toml(tmp_path / "devices.toml", sshd, sshd["host_key"], profile="x86-avx512")
    out = tmp_path / "r.json"
    r = run_cli("bench", str(bundle), "--device", "loop", "--devices", str(devices),
                "--min-runs", "30", "--out", str(out), "--quiet")  # fmt: skip
    assert r.returncode == 0, r.stderr
    from edgekit.bench import load_report

    rep = load_report(out)
    assert rep["latency_ms"]["n"] == 30
    assert any(
        "made for profile x86-avx2; device loop stands for x86-avx512" in w for w in rep["warnings"]
    )
    r = run_cli(
        "bench", str(bundle), "--remote", "loop", "--devices", str(devices), "--processes", "2"
    )
    assert_user_error(r, "--processes does not apply on an SSH device")
    assert rep["environment"]["hostname"] and rep["remote"]["device"] == "loop"


def test_cli_bench_device_both_or_neither_is_refused(bundle, tmp_path, monkeypatch):
    from tests.conftest import invoke_cli

    monkeypatch.chdir(tmp_path)  # no ./devices.toml, no ~/.config/edgekit/devices.toml
    monkeypatch.setenv("HOME", str(tmp_path))
    both = tmp_path / "both.toml"
    both.write_text(
        '[devices.GPU]\nhost = "127.0.0.1"\nuser = "u"\nkey = "k"\nprofile = "x86-avx2"\n'
        '[devices.lab]\nhost = "127.0.0.1"\nuser = "u"\nkey = "k"\nprofile = "x86-avx2"\n'
    )
    r = invoke_cli("bench", str(bundle), "--device", "GPU", "--devices", str(both))
    assert_user_error(r, "--device GPU names both a runtime device here and device GPU of",
                      "give --remote GPU")  # fmt: skip
    r = invoke_cli("bench", str(bundle), "--device", "nope", "--devices", str(both))
    assert_user_error(r, "--device nope is neither a runtime device (CPU, GPU,", "cuda",
                      f"nor the devices of {both} (GPU, lab)")  # fmt: skip
    r = invoke_cli("bench", str(bundle), "--device", "nope")
    assert_user_error(r, "--device nope is neither a runtime device", "none found")
    from edgekit.remote import bench_device

    assert bench_device("cpu") is None and bench_device("GPU.1") is None
    assert bench_device("lab", both).name == "lab"


def test_changed_or_unknown_host_key_is_refused_unless_accepted(sshd, bundle, tmp_path):
    from edgekit.remote import DeviceError, remote_benchmark

    other = keygen(tmp_path / "other")
    devices = devices_toml(tmp_path / "devices.toml", sshd, other)
    with pytest.raises(DeviceError, match="not the one pinned"):
        remote_benchmark(bundle, "loop", devices_file=devices, runs=5)
    r = run_cli("bench", str(bundle), "--remote", "loop", "--devices", str(devices), "--quiet")
    assert_user_error(r, "not the one pinned")
    unpinned = devices_toml(tmp_path / "new.toml", sshd, None)
    with pytest.raises(DeviceError, match="no pinned host_key"):
        remote_benchmark(bundle, "loop", devices_file=unpinned, runs=5)
    rep = remote_benchmark(bundle, "loop", devices_file=unpinned, runs=5, accept_new_host_key=True)
    assert rep["latency_ms"]["n"] == 5
    assert f'host_key = "{sshd["host_key"]}"' in unpinned.read_text()  # pinned for next time


def test_corrupted_file_on_device_is_refused(sshd, bundle, tmp_path):
    from edgekit.remote import remote_benchmark
    from edgekit.remote.bench import bundle_id

    devices = devices_toml(tmp_path / "devices.toml", sshd, sshd["host_key"])
    remote_benchmark(bundle, "loop", devices_file=devices, runs=5)
    model = sshd["local_workdir"] / bundle_id(bundle) / "model.onnx"
    original = model.read_bytes()
    try:
        model.write_bytes(original[:-8] + b"\0" * 8)
        with pytest.raises(BundleError, match="model.onnx does not match its sha256"):
            remote_benchmark(bundle, "loop", devices_file=devices, runs=5)
    finally:
        model.write_bytes(original)


def test_timeout_leaves_no_remote_process(sshd, bundle, tmp_path):
    from edgekit.remote import DeviceError, remote_benchmark

    devices = devices_toml(tmp_path / "devices.toml", sshd, sshd["host_key"])
    with pytest.raises(DeviceError, match="timeout"):
        remote_benchmark(bundle, "loop", devices_file=devices, runs=10**9, timeout_s=3)
    time.sleep(0.5)
    left = subprocess.run(
        ["pgrep", "-u", sshd["user"], "-f", "run.py --bench"], capture_output=True, text=True
    )
    assert left.stdout.strip() == "", left.stdout


def test_device_of_another_arch_is_refused(sshd, bundle, tmp_path):
    import json

    from edgekit.remote import DeviceError, remote_benchmark

    other = tmp_path / "arm"
    shutil.copytree(bundle, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["profile"]["target"]["arch"] = "aarch64"  # where a real manifest holds it
    (other / "manifest.json").write_text(json.dumps(manifest))
    devices = devices_toml(tmp_path / "devices.toml", sshd, sshd["host_key"])
    with pytest.raises(DeviceError, match="is x86_64, and bundle .* is for .*aarch64"):
        remote_benchmark(other, "loop", devices_file=devices, runs=5)


def test_devices_file_schema(tmp_path):
    from edgekit.remote import get_device, load_devices

    bad = tmp_path / "d.toml"
    bad.write_text(
        '[devices.x]\nhost = "h"\nuser = "u"\nkey = "k"\nprofile = "rpi4"\nport = "22"\n'
    )
    with pytest.raises(InputError, match=r"devices.x.port = '22' is not the SSH port"):
        load_devices(bad)
    bad.write_text('[devices.x]\nhost = "h"\nuser = "u"\nkey = "k"\n')
    with pytest.raises(InputError, match="has no 'profile'"):
        load_devices(bad)
    bad.write_text(
        '[devices.x]\nhost = "h"\nuser = "u"\nkey = "k"\nprofile = "rpi4"\nhostkey = "a"\n'
    )
    with pytest.raises(InputError, match="unknown key 'hostkey'"):
        load_devices(bad)
    bad.write_text('[devices.x]\nhost = "h"\nuser = "u"\nkey = "k"\nprofile = "rpi4"\n')
    assert get_device("x", bad).port == 22
    with pytest.raises(InputError, match="no device 'y'; it names: x"):
        get_device("y", bad)
