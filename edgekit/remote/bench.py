"""Benchmark a deploy bundle on a device over SSH and return a normal bench Report.

Steps: fingerprint the device (its arch must be the bundle profile's), push the
bundle over SFTP into <workdir>/<manifest sha256>/ (skipped when a complete copy
is there), run the bundle's own `run.py --bench --json` there under the device's `flock` (one benchmark
per device) and `timeout` (nothing is left running after a dropped connection),
and turn the raw samples into a Report whose environment is the device's. Only
on-device timings are samples; push, fingerprint and the SSH round trip are
recorded apart under "remote".
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shlex
import time
from pathlib import Path
from typing import Any

from edgekit.errors import BundleError
from edgekit.remote.devices import Device, get_device
from edgekit.remote.ssh import DeviceError, connect

HERE = Path(__file__).resolve().parent
COMPLETE = ".edgekit-complete"  # written last into a pushed bundle folder
LOCK = ".edgekit-bench.lock"


def probe_source() -> str:
    """The fingerprint program sent to a device: edgekit/vocab.py (for normalize_arch), then
    edgekit/devices.py without its edgekit import, then probe_tail.py. Both modules import
    only the standard library, so the program runs where edgekit is not installed."""
    from edgekit.bench.machine import PACKAGES

    vocab_src = (HERE.parent / "vocab.py").read_text(encoding="utf-8")
    devices_src = (HERE.parent / "devices.py").read_text(encoding="utf-8")
    for line in (
        "from __future__ import annotations\n",
        "from edgekit.vocab import normalize_arch\n",
    ):
        if line not in devices_src:
            raise RuntimeError(
                f"edgekit/devices.py no longer has {line.strip()!r}: update the probe"
            )
        devices_src = devices_src.replace(line, "", 1)
    tail = (HERE / "probe_tail.py").read_text(encoding="utf-8")
    tail = tail.replace("PACKAGES: list = []", f"PACKAGES: list = {list(PACKAGES)!r}")
    return vocab_src + "\n" + devices_src + "\n" + tail


def environment(raw: dict[str, Any]) -> dict[str, Any]:
    """A report's environment block from the probe's output (the device's facts)."""
    c = raw["cpu"]
    return {
        "cpu_model": c["model"],
        "arch": c["arch"],
        "cores_logical": c["cores_logical"],
        "isa_features": c["isa_features"],
        "memory_bytes": raw["memory_bytes"],
        "os": raw["os"],
        "python": raw["python"],
        "governor": raw["governor"],
        "load_avg": raw["load_avg"],
        "hostname": raw["hostname"],
        "packages": raw["packages"],
    }


def _arch(name: str) -> str:
    from edgekit.vocab import normalize_arch

    return normalize_arch(name)


def bundle_id(bundle: Path) -> str:
    """The bundle's checksum: manifest.json lists every file's sha256, so its hash names them all."""
    return hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()


async def _push(conn: Any, bundle: Path, remote_dir: str, workdir: str) -> bool:
    """Put the bundle into `remote_dir` unless a complete copy is there; True when it pushed."""
    async with conn.start_sftp_client() as sftp:
        await sftp.makedirs(workdir, exist_ok=True)
        if await sftp.exists(f"{remote_dir}/{COMPLETE}"):
            return False
        partial = f"{remote_dir}.partial-{os.getpid()}-{time.time_ns()}"
        await sftp.put(str(bundle), partial, recurse=True)
        async with sftp.open(f"{partial}/{COMPLETE}", "w") as fh:
            await fh.write(f"{time.time()}\n")
        if await sftp.exists(remote_dir):  # a copy without its marker: a push that was cut short
            await conn.run(f"rm -rf {shlex.quote(remote_dir)}", check=False)
        await sftp.posix_rename(partial, remote_dir)
        return True


async def _bench(
    bundle: Path, manifest: dict[str, Any], device: Device, *, accept_new_host_key: bool,
    runs: int, warmup: int, threads: int | None, timeout_s: int,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:  # fmt: skip
    pc = time.perf_counter
    t0 = pc()
    conn = await connect(device, accept_new_host_key=accept_new_host_key)
    remote: dict[str, Any] = {"device": device.name, "device_profile": device.profile,
                              "host": device.host, "port": device.port,
                              "connect_ms": (pc() - t0) * 1e3}  # fmt: skip
    async with conn:
        t0 = pc()
        res = await conn.run(f"{shlex.quote(device.python)} -", input=probe_source(), check=False)
        remote["fingerprint_ms"] = (pc() - t0) * 1e3
        if res.exit_status != 0:
            raise DeviceError(
                f"device {device.name}: {device.python} could not run the fingerprint probe: "
                f"{(res.stderr or '').strip().splitlines()[-1:] or res.exit_status}"
            )
        env = environment(json.loads(res.stdout))
        prof = manifest.get("profile", {})
        want = _arch(str((prof.get("target") or {}).get("arch") or prof.get("arch") or ""))
        if want and _arch(env["arch"]) != want:
            raise DeviceError(
                f"device {device.name} is {env['arch']}, and bundle {bundle} is for "
                f"{manifest['profile'].get('name')} ({want}); refused"
            )
        workdir = device.remote_workdir
        sha = bundle_id(bundle)
        remote_dir = f"{workdir}/{sha}"
        t0 = pc()
        remote["pushed"] = await _push(conn, bundle, remote_dir, workdir)
        remote["push_ms"] = (pc() - t0) * 1e3
        remote["bundle_dir"] = remote_dir
        # the bundle's own runner times it (it checks every file's sha256 first)
        args = [device.python, f"{remote_dir}/run.py", "--bench", "--json", "--runs", str(runs),
                "--warmup", str(warmup)]  # fmt: skip
        if threads is not None:
            args += ["--threads", str(threads)]
        # flock: one benchmark per device; timeout: killed on the device even if we vanish
        command = (f"flock {shlex.quote(workdir + '/' + LOCK)} timeout -k 5 {int(timeout_s)} "
                   + " ".join(shlex.quote(a) for a in args))  # fmt: skip
        t0 = pc()
        res = await conn.run(command, check=False)
        remote["run_round_trip_ms"] = (pc() - t0) * 1e3
        remote["timeout_s"] = timeout_s
    if res.exit_status in (124, 137):
        raise DeviceError(
            f"the benchmark on device {device.name} ran past its {timeout_s} s timeout and was stopped "
            "there; give a longer timeout or fewer runs"
        )
    if res.exit_status != 0:
        last = (res.stderr or "").strip().splitlines()
        msg = last[-1] if last else f"exit status {res.exit_status}"
        if "unrecognized arguments: --bench" in msg:
            raise BundleError(f"bundle {bundle} has a run.py without --bench (made by an older "
                              "edgekit); deploy it again")  # fmt: skip
        if msg.startswith("run.py: error: "):
            raise BundleError(f"on device {device.name}: {msg[len('run.py: error: ') :]}")
        raise DeviceError(f"the benchmark on device {device.name} failed: {msg}")
    return json.loads(res.stdout.strip().splitlines()[-1]), env, remote


def remote_benchmark(
    bundle: str | os.PathLike,
    device: str | Device,
    *,
    devices_file: str | os.PathLike | None = None,
    accept_new_host_key: bool = False,
    runs: int = 200,
    warmup: int = 20,
    threads: int | None = None,
    timeout_s: int | None = None,
) -> Any:
    """Benchmark `bundle` on `device` (a name in the devices file, or a Device); returns a Report.

    The bundle is checked here first (load_bundle) and again on the device by its own
    run.py. `timeout_s` defaults to the device's `timeout` (600 s).
    """
    from edgekit.deploy import load_bundle
    from edgekit.remote.report import build_report

    if runs < 1 or warmup < 0:
        raise DeviceError(
            f"runs ({runs}) must be at least 1 and warm-up runs ({warmup}) at least 0"
        )
    dev = device if isinstance(device, Device) else get_device(device, devices_file)
    loaded = load_bundle(bundle)
    started = time.time()
    raw, env, remote = asyncio.run(
        _bench(
            loaded.path,
            loaded.manifest,
            dev,
            accept_new_host_key=accept_new_host_key,
            runs=runs,
            warmup=warmup,
            threads=threads,
            timeout_s=timeout_s if timeout_s is not None else dev.timeout,
        )  # fmt: skip
    )
    remote["wall_s"] = time.time() - started
    return build_report(loaded, raw, env, remote)
