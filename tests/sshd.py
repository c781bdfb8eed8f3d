"""A real OpenSSH server on 127.0.0.1 for remote-device tests and benchmarks (not a test module).

`loopback_sshd(folder)` starts `/usr/sbin/sshd -D` on a free high port with host and
client keys made in `folder`, for a non-root login user (created when running as
root, else the current user), and yields what a devices.toml needs.
"""

from __future__ import annotations

import contextlib
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SSHD = Path("/usr/sbin/sshd")
USER = "edgekit-bench"


class SSHDUnavailable(Exception):
    """This machine cannot run the loopback server (no sshd, no suitable Python); a skip reason."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> str:
    """A new ed25519 key pair at `path`; returns the public key as `type base64`."""
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
    # root's interpreter may live under /root (mode 700): run the system Python of the same
    # version with this venv's site-packages, as a device has its own Python and wheels
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if not system.is_file():
        raise SSHDUnavailable(f"{system} absent: the login user cannot run this venv's Python")
    wrapper = public / "python"
    wrapper.write_text(f'#!/bin/sh\nexec env PYTHONPATH={site} {system} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@contextlib.contextmanager
def loopback_sshd(folder: Path) -> Iterator[dict[str, Any]]:
    """Run sshd on 127.0.0.1 for the block; yields port, user, key, host_key, python, workdir."""
    if not SSHD.is_file() or shutil.which("ssh-keygen") is None:
        raise SSHDUnavailable("OpenSSH server absent (apt-get install openssh-server)")
    public = Path(tempfile.mkdtemp(prefix="edgekit-sshd-"))  # readable by the login user
    public.chmod(0o755)
    user = _login_user()
    home = Path(pwd.getpwnam(user).pw_dir)
    workdir = f"ekbench-{uuid.uuid4().hex[:8]}"
    proc = None
    try:
        host_key = keygen(folder / "host_ed25519")
        (public / "authorized_keys").write_text(keygen(folder / "client_ed25519") + "\n")
        (public / "authorized_keys").chmod(0o644)
        python = _device_python(public)
        port = free_port()
        cfg = folder / "sshd_config"
        cfg.write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_ed25519'}\n"
            f"PidFile {folder / 'sshd.pid'}\nAuthorizedKeysFile {public / 'authorized_keys'}\n"
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
                    err = proc.stderr.read().decode()[-300:] if proc.stderr else ""
                    raise SSHDUnavailable(f"sshd did not start: {err}") from None
                time.sleep(0.1)
        yield {"port": port, "user": user, "key": str(folder / "client_ed25519"),
               "host_key": host_key, "python": python, "workdir": workdir,
               "local_workdir": home / workdir}  # fmt: skip
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(home / workdir, ignore_errors=True)
        shutil.rmtree(public, ignore_errors=True)


def devices_toml(
    path: Path, facts: dict[str, Any], host_key: str | None, profile: str = "x86-avx2"
) -> Path:
    """A devices.toml naming the loopback server as device `loop`."""
    lines = ["[devices.loop]", 'host = "127.0.0.1"', f"port = {facts['port']}",
             f'user = "{facts["user"]}"', f'key = "{facts["key"]}"', f'python = "{facts["python"]}"',
             f'workdir = "~/{facts["workdir"]}"', f'profile = "{profile}"']  # fmt: skip
    if host_key is not None:
        lines.append(f'host_key = "{host_key}"')
    path.write_text("\n".join(lines) + "\n")
    return path
