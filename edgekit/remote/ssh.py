"""An SSH connection to a device whose host key is pinned in devices.toml (asyncssh).

A device without a pinned key, or whose key changed, is refused unless the
caller accepts the new key, which is then written into devices.toml.
"""

from __future__ import annotations

from typing import Any

from edgekit.errors import InputError, MissingDependencyError
from edgekit.remote.devices import Device, pin_host_key


class DeviceError(InputError):
    """A device cannot be reached, refused us, or failed a check (host key, arch, checksums)."""


def _asyncssh() -> Any:
    try:
        import asyncssh
    except ImportError:
        raise MissingDependencyError(
            "remote benchmarks need asyncssh, which is not installed; run: pip install 'edgekit[remote]'"
        ) from None
    return asyncssh


def key_line(key: Any) -> str:
    """`ssh-ed25519 AAAA...`: a host key as a known_hosts line without host name or comment."""
    return " ".join(key.export_public_key("openssh").decode().split()[:2])


def _where(device: Device) -> str:
    return f"device {device.name} ({device.user}@{device.host}:{device.port})"


async def connect(device: Device, *, accept_new_host_key: bool = False) -> Any:
    """Log in to `device` with its key, trusting only its pinned host key; returns the connection.

    With `accept_new_host_key`, a device with no pinned key or a changed one is trusted
    now and its key written into devices.toml; without it, both are refused.
    """
    asyncssh = _asyncssh()
    pinned = device.host_key
    try:
        if accept_new_host_key:
            offered = key_line(await asyncssh.get_server_host_key(device.host, device.port))
            if offered != pinned:
                pin_host_key(device, offered)
                pinned = offered
        if not pinned:
            raise DeviceError(
                f"{_where(device)} has no pinned host_key in {device.source}; check the host's key "
                "and add it, or run once with --accept-new-host-key"
            )
        trusted = asyncssh.import_public_key(pinned)
        return await asyncssh.connect(
            device.host,
            port=device.port,
            username=device.user,
            client_keys=[str(_expand(device.key))],
            known_hosts=([trusted], [], []),
            agent_path=None,
            connect_timeout=20,
        )
    except asyncssh.HostKeyNotVerifiable:
        raise DeviceError(
            f"{_where(device)} offered a host key that is not the one pinned in {device.source}; "
            "it changed or this is another machine: refused (--accept-new-host-key trusts it)"
        ) from None
    except asyncssh.KeyImportError as exc:
        raise DeviceError(
            f"{device.source}: devices.{device.name}: key or host_key is not a key ({exc})"
        ) from None
    except asyncssh.PermissionDenied:
        raise DeviceError(f"{_where(device)} refused the login with key {device.key}") from None
    except (OSError, asyncssh.Error) as exc:
        raise DeviceError(f"{_where(device)} cannot be reached ({exc})") from None


def _expand(path: str) -> Any:
    from pathlib import Path

    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"key file {p} does not exist")
    return p
