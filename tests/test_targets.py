"""`edgekit targets`: which numbers this machine can give for each profile are the target's own."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, run_cli

from edgekit.compilers import find_tool
from edgekit.profiles import list_profiles, load_profile
from edgekit.runtimes import get_runtime
from edgekit.targets import target_support, targets


def test_every_profile_has_a_row() -> None:
    assert [t.profile for t in targets()] == [p.name for p in list_profiles()]


def test_microcontroller_runtime_is_the_targets_own() -> None:
    row = target_support(load_profile("cortex-m"), "x86_64")
    if get_runtime("tflite-micro").available():
        assert row.runtime.startswith("real (tflite-micro")
        assert row.timing.startswith("host") and "not the device's" in row.timing
        assert "tensor arena" in row.own_figures
    else:
        assert row.runtime.startswith("tflite-micro not installed") and row.timing == "none"


@pytest.mark.parametrize("name", ["android-arm64-executorch", "rpi5-executorch"])
def test_executorch_runtime_is_real_and_its_times_the_hosts(name: str) -> None:
    row = target_support(load_profile(name), "x86_64")
    if get_runtime("executorch").available():
        assert row.runtime.startswith("real (executorch, the target's runtime")
        assert row.timing.startswith("host") and "not the device's" in row.timing
    else:
        assert row.runtime.startswith("executorch not installed")
    assert target_support(load_profile(name), "aarch64").timing == "target"


def test_ethos_u_compile_is_real_only_with_vela() -> None:
    row = target_support(load_profile("ethos-u55-128"), "x86_64")
    if find_tool("vela") is not None:
        assert row.compile == "real (vela)" and "vela's estimates" in row.own_figures
    else:
        assert row.compile.startswith("vela not installed")


def test_arch_decides_target_or_host() -> None:
    rpi = load_profile("rpi4")
    assert target_support(rpi, "x86_64").timing == "host only"
    assert target_support(rpi, "aarch64").timing == "target"
    gpu = load_profile("nvidia-gpu")  # a GPU target's latency is never this CPU's
    assert target_support(gpu, gpu.arch).timing == "host only"


def test_coral_without_its_compiler_says_the_model_is_left_ready() -> None:
    row = target_support(load_profile("coral-edgetpu"), "x86_64")
    if find_tool("edgetpu_compiler") is None:
        assert row.compile == "edgetpu_compiler not installed: the model is left ready for it"


def test_cli_json_matches_the_api_and_loads_no_framework() -> None:
    result = run_cli("targets", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [t.to_dict() for t in targets()]
    # --verbose: without it edgekit captures fd 2 during a command, -X importtime's lines too
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "edgekit", "--verbose",
                          "targets"], cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    loaded = {ln.rsplit("|", 1)[-1].strip() for ln in out.stderr.splitlines() if "|" in ln}
    assert not loaded & {"tensorflow", "onnxruntime", "openvino", "nncf", "torch"}
    assert "edgekit.targets" in loaded  # the check saw the command's imports
