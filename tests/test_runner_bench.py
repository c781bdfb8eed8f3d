"""The bundle's run.py --bench: edgekit's report fields, its numbers, no edgekit needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import fresh_venv, installed

from edgekit import devices
from edgekit.bench import benchmark, machine, stats
from edgekit.bench.report import SCHEMA_VERSION, validate_report
from edgekit.deploy import deploy
from edgekit.deploy import runner as run_py


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """person_detect (int8, ~0.3 MB, ms-scale) as an rpi4 bundle: shipped as it is."""
    src = Path(__file__).resolve().parents[1].parent / "shared" / "models" / "person_detect.tflite"
    if not src.is_file():
        pytest.skip(f"{src} is absent (it exists in CI, not in a user's clone)")
    out = tmp_path_factory.mktemp("bench") / "pd"
    return deploy(src, "rpi4", out, measure=False).path


def close(a: object, b: object) -> bool:
    """Equal, floats within rounding, nested dicts key by key."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-12, abs=1e-15)
    return a == b


def run_bench(
    bundle: Path, *args: str, python: str = sys.executable
) -> subprocess.CompletedProcess:
    # no PYTHONPATH: run.py must not need edgekit, whatever the test's environment holds
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([python, "run.py", "--bench", *args], cwd=bundle, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_bench_json_is_a_valid_report(bundle: Path) -> None:
    r = run_bench(bundle, "--json", "--runs", "60", "--warmup", "5", "--threads", "1")
    assert r.returncode == 0, r.stderr
    report = validate_report(json.loads(r.stdout), "run.py --bench --json")
    samples = report["samples_ns"]
    assert len(samples) >= 60 and report["latency_ms"]["n"] == len(samples)
    assert report["runtime"]["threads"] == 1 and report["runtime"]["name"] == "litert"
    assert report["protocol"]["warmup"]["runs"] == 5
    assert report["protocol"]["timed_region"].startswith("input copy (set_tensor) + invoke")
    # the summary is edgekit's, computed from the same samples
    for key, value in stats.summarize(samples).items():
        assert close(report["latency_ms"][key], value), key
    # the environment is edgekit's fingerprint of this machine
    env = machine.fingerprint()
    for key in ("cpu_model", "arch", "cores_logical", "isa_features", "memory_bytes", "os",
                "python", "governor", "hostname"):  # fmt: skip
        assert report["environment"][key] == env[key], key
    assert report["environment"]["packages"]["ai-edge-litert"] == env["packages"]["ai-edge-litert"]


def test_runner_copies_agree_with_edgekit() -> None:
    """run.py keeps its own copies of a few of edgekit's constants; they must not drift."""
    assert run_py.REPORT_SCHEMA_VERSION == SCHEMA_VERSION
    assert run_py.QUANTILE_METHOD_NAME == stats.QUANTILE_METHOD_NAME
    assert run_py.PERCENTILES == stats.PERCENTILES
    assert run_py.ISA_FLAGS == devices.ISA_FLAGS
    rng = np.random.default_rng(1)
    for n in (1, 2, 8, 9, 50, 1001):
        x = rng.lognormal(13, 0.3, n).astype(np.int64)
        theirs = {**stats.summarize(x), "quantile_method": stats.QUANTILE_METHOD_NAME}
        assert close(run_py.summarize(x), theirs), n


def test_bench_agrees_with_edgekit_bench(bundle: Path) -> None:
    """Same bundle, same threads: run.py's median is edgekit bench's, within this shared
    machine's noise (the ±5% figure is in benchmarks/README.md, measured on a quiet one)."""
    r = run_bench(bundle, "--json", "--runs", "200", "--min-time", "1", "--threads", "1")
    assert r.returncode == 0, r.stderr
    mine = json.loads(r.stdout)["latency_ms"]["median"]
    theirs = benchmark(bundle, threads=1, min_time=1, warmup=20).latency_ms["median"]
    assert 0.67 < mine / theirs < 1.5, (mine, theirs)


def test_bench_text_and_bad_settings(bundle: Path) -> None:
    r = run_bench(bundle, "--runs", "20", "--warmup", "2")
    assert r.returncode == 0, r.stderr
    assert "20 runs: median" in r.stdout and r.stdout.startswith("litert ")
    r = run_bench(bundle, "--runs", "0")
    assert r.returncode == 2 and r.stderr.startswith("run.py: error: --runs")
    assert "Traceback" not in r.stderr


def test_bench_refuses_a_tampered_bundle(bundle: Path, tmp_path: Path) -> None:
    import shutil

    copy = Path(shutil.copytree(bundle, tmp_path / "b"))
    with open(copy / "model.tflite", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01\x02")
    r = run_bench(copy, "--json")
    assert r.returncode == 2 and "does not match its sha256" in r.stderr and not r.stdout


@pytest.mark.slow
def test_bench_in_a_fresh_venv(bundle: Path, tmp_path: Path) -> None:
    """Only requirements.txt installed: run.py --bench works without edgekit or TensorFlow."""
    py = fresh_venv(bundle / "requirements.txt", tmp_path / "venv")
    r = run_bench(bundle, "--json", "--runs", "30", python=py)
    assert r.returncode == 0, r.stderr
    report = validate_report(json.loads(r.stdout), "run.py --bench --json (fresh venv)")
    assert report["latency_ms"]["n"] >= 30
    freeze = installed(py)
    assert "edgekit" not in freeze and "tensorflow" not in freeze
