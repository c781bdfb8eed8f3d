"""The report a device's `run.py --bench --json` sent back, as this host's bench Report.

The bundle's runner already writes a report with edgekit's fields (its samples,
protocol, phases and the device's own facts); here it is completed as a report of
this edgekit: the summary is recomputed from the raw samples by
`edgekit.bench.stats`, the environment is the device's full fingerprint (the probe),
and the time spent connecting, fingerprinting, pushing and on the SSH round trip
goes under "remote", never into the samples.
"""

from __future__ import annotations

from typing import Any


def build_report(
    loaded: Any, raw: dict[str, Any], env: dict[str, Any], remote: dict[str, Any]
) -> Any:
    """A Report from a LoadedBundle, run.py's bench JSON, the device's env and SSH figures."""
    from edgekit import __version__
    from edgekit.bench.machine import check
    from edgekit.bench.report import Report, validate_report
    from edgekit.bench.stats import QUANTILE_METHOD_NAME, summarize

    data = dict(validate_report(raw, f"run.py --bench on device {remote['device']}"))
    lat = summarize(data["samples_ns"])
    lat["quantile_method"] = QUANTILE_METHOD_NAME
    lat["per_process"] = data["latency_ms"]["per_process"]
    warnings = check(env)
    made_for = loaded.manifest.get("profile", {}).get("name")
    if made_for and made_for != remote["device_profile"]:
        warnings.append(f"the bundle was made for profile {made_for}; device {remote['device']} "
                        f"stands for {remote['device_profile']}")  # fmt: skip
    # the runner's own warnings, less the machine checks made again above from `env`
    warnings += [w for w in data["warnings"] if "governor" not in w and "busy" not in w]
    data.update(
        edgekit_version=__version__,
        model={**data["model"], "bundle": str(loaded.path)},
        environment=env,
        protocol={**data["protocol"],
                  "where": f"on device {remote['device']}; only on-device timings are samples",
                  "timing_source": f"the device's own time (device {remote['device']})"},
        latency_ms=lat,
        warnings=warnings,
        remote=remote,
    )  # fmt: skip
    return Report(data).validate()
