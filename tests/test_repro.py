"""Reproducibility: same model, data, profile and seed give the same optimized artifact.

What "the same" means per format (measured 2026-11-26, see tests/README.md):

- tflite int8 (TFLiteConverter) and onnx int8 (onnxruntime.quantization): byte-identical
  files, also within one process.
- openvino int8 (NNCF): the weights (.bin) are byte-identical; the .xml is byte-identical
  between fresh processes, but within one process OpenVINO numbers its generated node
  names from a process-wide counter (Constant_24377 then Constant_77218), so a second run
  in the same process differs in those names only. The test asserts the .bin bytes, the
  .xml with generated names masked, and identical outputs.

Each report records the versions of the frameworks that made it.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli

CASES = {
    # format: (tiny_models key, profile, model files)
    "tflite": ("keras", "android-arm64", ["model.tflite"]),
    "onnx": ("onnx", "x86-avx2", ["model.onnx"]),
    "openvino": ("onnx", "intel-npu", ["model.xml", "model.bin"]),
}


@pytest.fixture(scope="module")
def calib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("calib") / "calib.npz"
    np.savez(path, x=rng.random((40, 8, 8, 1), dtype=np.float32), y=np.arange(40) % 3)
    return path


def _optimize(model: Path, profile: str, out: Path, calib: Path) -> Path:
    from edgekit.optimize import optimize

    optimize(
        model,
        profile,
        out=out,
        quantize="int8",
        calib_data=f"npz:{calib}",
        calib_samples=16,
        measure=False,
        seed=0,
    )
    return out


def _outputs(model: Path, runtime: str) -> list[np.ndarray]:
    from edgekit.inputs import generate_inputs
    from edgekit.model import load
    from edgekit.runtimes import open_session

    m = load(model)
    feeds = generate_inputs(m.signature, count=4, seed=1)
    with open_session(m, runtime) as session:
        return [np.concatenate([np.ravel(v) for v in session.run(f).values()]) for f in feeds]


def _mask_generated_names(xml: bytes) -> bytes:
    return re.sub(rb'name="([A-Za-z]+)_\d+"', rb'name="\1_N"', xml)


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_same_inputs_same_artifact(
    tiny_models: dict[str, Path], calib: Path, tmp_path: Path, fmt: str
) -> None:
    key, profile, files = CASES[fmt]
    a = _optimize(tiny_models[key], profile, tmp_path / "a", calib)
    b = _optimize(tiny_models[key], profile, tmp_path / "b", calib)
    report = json.loads((a / "report.json").read_text())
    assert report["optimized"]["precision"] == "int8", report["optimized"]
    if fmt in ("tflite", "onnx"):
        for name in files:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
        return
    assert (a / "model.bin").read_bytes() == (b / "model.bin").read_bytes()
    xml_a, xml_b = (a / "model.xml").read_bytes(), (b / "model.xml").read_bytes()
    assert _mask_generated_names(xml_a) == _mask_generated_names(xml_b)
    for out_a, out_b in zip(
        _outputs(a / "model.xml", "openvino"), _outputs(b / "model.xml", "openvino"), strict=True
    ):
        np.testing.assert_array_equal(out_a, out_b)


def test_reports_record_framework_versions(
    tiny_models: dict[str, Path], calib: Path, tmp_path: Path
) -> None:
    """optimize's report.json, deploy's manifest and bench's report name every framework's version."""
    import onnxruntime

    opt = _optimize(tiny_models["onnx"], "x86-avx2", tmp_path / "opt", calib)
    versions = json.loads((opt / "report.json").read_text())["versions"]
    assert versions["onnxruntime"] == onnxruntime.__version__
    assert {"numpy", "onnx", "tensorflow", "keras", "openvino", "nncf", "tf2onnx"} <= set(versions)

    bundle = tmp_path / "bundle"
    result = run_cli(
        "deploy", str(opt / "model.onnx"), "--profile", "x86-avx2", "--out", str(bundle),
        "--no-measure",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["versions"]["onnxruntime"] == onnxruntime.__version__

    rep = tmp_path / "r.json"
    result = run_cli(
        "bench", str(opt / "model.onnx"), "--min-runs", "10", "--min-time", "0.05",
        "--warmup", "3", "--out", str(rep), "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    bench = json.loads(rep.read_text())
    assert bench["environment"]["packages"]["onnxruntime"] == onnxruntime.__version__
    assert bench["runtime"]["version"] == onnxruntime.__version__


@pytest.mark.slow
def test_fresh_processes_give_identical_openvino_files(
    tiny_models: dict[str, Path], calib: Path, tmp_path: Path
) -> None:
    """Across fresh processes (the CLI), OpenVINO's .xml is byte-identical too."""
    digests = []
    for name in ("a", "b"):
        out = tmp_path / name
        result = run_cli(
            "optimize", str(tiny_models["onnx"]), "--profile", "intel-npu", "--quantize", "int8",
            "--calib-data", f"npz:{calib}", "--out", str(out),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        digests.append(
            [hashlib.sha256((out / f).read_bytes()).hexdigest() for f in ("model.xml", "model.bin")]
        )
    assert digests[0] == digests[1]
