"""Remote benchmarks over SSH against a real OpenSSH server on 127.0.0.1 started by the test.

The server runs as a subprocess on a free high port with host and client keys made
in the test's folder; logins are as a non-root user (created here when running as
root, else the current user). Skips with a reason where sshd is absent.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from edgekit.errors import BundleError, InputError
from tests.conftest import assert_user_error, run_cli, tiny_onnx

SSHD = Path("/usr/sbin/sshd")
pytestmark = [
    pytest.mark.skipif(
        not SSHD.is_file(), reason="OpenSSH server absent (apt-get install openssh-server)"
    ),
    pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen absent"),
]
asyncssh = pytest.importorskip("asyncssh", reason="asyncssh not installed (edgekit[remote])")
USER = "edgekit-bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


def _login_user() -> str:
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        pwd.getpwnam(USER)
    except KeyError:
        # '*' rather than a locked '!': sshd without PAM refuses locked accounts
        subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/sh", "-p", "*", USER], check=True
        )
    return USER


def _others_can_run(path: str) -> bool:
    real = Path(os.path.realpath(path))
    return all(os.stat(d).st_mode & 0o001 for d in real.parents) and bool(
        os.stat(real).st_mode & 0o001
    )


def _device_python(public: Path) -> str:
    """A Python the login user can run that sees this venv's packages (numpy, onnxruntime)."""
    site = sysconfig.get_paths()["purelib"]
    if os.geteuid() != 0 or (_others_can_run(sys.executable) and _others_can_run(site)):
        return sys.executable
    # root's interpreter lives under /root (mode 700): run the system Python of the same version
    # with this venv's site-packages, as a device has its own Python and wheels
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if not system.is_file():
        pytest.skip(f"{system} absent: the test user cannot run this venv's Python")
    wrapper = public / "python"
    wrapper.write_text(f'#!/bin/sh\nexec env PYTHONPATH={site} {system} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    """An sshd on 127.0.0.1:<free port>; yields the facts a devices.toml needs."""
    tmp = tmp_path_factory.mktemp("sshd")
    public = Path(tempfile.mkdtemp(prefix="edgekit-sshd-"))  # readable by the login user
    public.chmod(0o755)
    user = _login_user()
    host_key = _keygen(tmp / "host_ed25519")
    client_pub = _keygen(tmp / "client_ed25519")
    (public / "authorized_keys").write_text(client_pub + "\n")
    (public / "authorized_keys").chmod(0o644)
    python = _device_python(public)
    port = _free_port()
    cfg = tmp / "sshd_config"
    cfg.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp / 'host_ed25519'}\n"
        f"PidFile {tmp / 'sshd.pid'}\nAuthorizedKeysFile {public / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        f"PermitRootLogin no\nAllowUsers {user}\nSubsystem sftp internal-sftp\nLogLevel ERROR\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(cfg)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.skip(f"sshd did not start: {proc.stderr.read().decode()[-300:]}")
            time.sleep(0.1)
    home = Path(pwd.getpwnam(user).pw_dir)
    workdir = f"ekbench-{uuid.uuid4().hex[:8]}"
    yield {"port": port, "user": user, "key": str(tmp / "client_ed25519"), "host_key": host_key,
           "python": python, "workdir": workdir, "local_workdir": home / workdir, "tmp": tmp}  # fmt: skip
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(home / workdir, ignore_errors=True)
    shutil.rmtree(public, ignore_errors=True)


def _devices_toml(path: Path, sshd: dict, host_key: str | None, profile: str = "x86-avx2") -> Path:
    lines = ["[devices.loop]", 'host = "127.0.0.1"', f"port = {sshd['port']}",
             f'user = "{sshd["user"]}"', f'key = "{sshd["key"]}"', f'python = "{sshd["python"]}"',
             f'workdir = "~/{sshd["workdir"]}"', f'profile = "{profile}"']  # fmt: skip
    if host_key is not None:
        lines.append(f'host_key = "{host_key}"')
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgekit.deploy import deploy

    tmp = tmp_path_factory.mktemp("bundle")
    model = tiny_onnx(tmp / "tiny.onnx", width=64, layers=3)
    return deploy(model, "x86-avx2", tmp / "bundle", measure=False, threads=1).path


def test_bench_on_device_gives_a_report_with_the_device_environment(sshd, bundle, tmp_path):
    from edgekit.bench import validate_report
    from edgekit.remote import remote_benchmark

    devices = _devices_toml(tmp_path / "devices.toml", sshd, sshd["host_key"])
    first = remote_benchmark(bundle, "loop", devices_file=devices, runs=50, warmup=5)
    d = validate_report(first.to_dict())
    assert d["latency_ms"]["n"] == 50 and len(d["samples_ns"]) == 50
    assert d["environment"]["arch"] == "x86_64"
    assert d["environment"]["packages"]["onnxruntime"] is not None
    remote = d["remote"]
    assert remote["pushed"] is True and remote["device"] == "loop"
    for key in ("connect_ms", "fingerprint_ms", "push_ms", "run_round_trip_ms"):
        assert remote[key] > 0
    # on-device samples only: the SSH round trip is far longer than their sum
    assert sum(d["samples_ns"]) / 1e6 < remote["run_round_trip_ms"]
    assert (
        sshd["local_workdir"] / remote["bundle_dir"].split("/")[-1] / ".edgekit-complete"
    ).is_file()
    second = remote_benchmark(bundle, "loop", devices_file=devices, runs=20, warmup=2)
    assert second["remote"]["pushed"] is False  # the checksum-named folder is already there


def test_cli_bench_remote(sshd, bundle, tmp_path):
    devices = _devices_toml(tmp_path / "devices.toml", sshd, sshd["host_key"])
    out = tmp_path / "r.json"
    r = run_cli("bench", str(bundle), "--remote", "loop", "--devices", str(devices),
                "--min-runs", "30", "--out", str(out), "--quiet")  # fmt: skip
    assert r.returncode == 0, r.stderr
    from edgekit.bench import load_report

    assert load_report(out)["latency_ms"]["n"] == 30


def test_changed_or_unknown_host_key_is_refused_unless_accepted(sshd, bundle, tmp_path):
    from edgekit.remote import DeviceError, remote_benchmark

    other = _keygen(tmp_path / "other")
    devices = _devices_toml(tmp_path / "devices.toml", sshd, other)
    with pytest.raises(DeviceError, match="not the one pinned"):
        remote_benchmark(bundle, "loop", devices_file=devices, runs=5)
    r = run_cli("bench", str(bundle), "--remote", "loop", "--devices", str(devices), "--quiet")
    assert_user_error(r, "not the one pinned")
    unpinned = _devices_toml(tmp_path / "new.toml", sshd, None)
    with pytest.raises(DeviceError, match="no pinned host_key"):
        remote_benchmark(bundle, "loop", devices_file=unpinned, runs=5)
    rep = remote_benchmark(bundle, "loop", devices_file=unpinned, runs=5, accept_new_host_key=True)
    assert rep["latency_ms"]["n"] == 5
    assert f'host_key = "{sshd["host_key"]}"' in unpinned.read_text()  # pinned for next time


def test_corrupted_file_on_device_is_refused(sshd, bundle, tmp_path):
    from edgekit.remote import remote_benchmark
    from edgekit.remote.bench import bundle_id

    devices = _devices_toml(tmp_path / "devices.toml", sshd, sshd["host_key"])
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

    devices = _devices_toml(tmp_path / "devices.toml", sshd, sshd["host_key"])
    with pytest.raises(DeviceError, match="timeout"):
        remote_benchmark(bundle, "loop", devices_file=devices, runs=10**9, timeout_s=3)
    time.sleep(0.5)
    left = subprocess.run(
        ["pgrep", "-u", sshd["user"], "-f", "timing-"], capture_output=True, text=True
    )
    assert left.stdout.strip() == "", left.stdout


def test_device_of_another_arch_is_refused(sshd, bundle, tmp_path):
    import json

    from edgekit.remote import DeviceError, remote_benchmark

    other = tmp_path / "arm"
    shutil.copytree(bundle, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["profile"]["arch"] = "aarch64"
    (other / "manifest.json").write_text(json.dumps(manifest))
    devices = _devices_toml(tmp_path / "devices.toml", sshd, sshd["host_key"])
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
