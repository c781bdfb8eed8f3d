"""Remote devices: benchmark a deploy bundle on a machine reached over SSH (asyncssh).

Example::

    from edgekit.remote import remote_benchmark
    report = remote_benchmark("bundle/", "pi-lab-3", devices_file="devices.toml")
    print(report.latency_ms["median"], report["environment"]["arch"])
"""

from __future__ import annotations

from edgekit.remote.bench import remote_benchmark
from edgekit.remote.devices import (
    Device,
    bench_device,
    find_devices_file,
    get_device,
    load_devices,
)
from edgekit.remote.ssh import DeviceError

__all__ = [
    "Device",
    "DeviceError",
    "bench_device",
    "find_devices_file",
    "get_device",
    "load_devices",
    "remote_benchmark",
]
