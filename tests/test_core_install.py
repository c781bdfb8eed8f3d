"""`pip install edgekit` without extras: the light commands work, the rest name their extra.

Builds a fresh venv, installs a copy of this checkout into it (pip resolves only the
core dependencies from the package index), and runs the installed `edgekit`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_startup import two_reports

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("tensorflow", "onnx", "onnxruntime", "openvino", "ai_edge_litert", "keras")


def _run(argv: list[str], timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def core_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("core")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("edgekit", "profiles"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    venv = base / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)])
    assert made.returncode == 0, made.stderr
    pip = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(src)])
    if pip.returncode != 0 and "Could not find a version" in pip.stderr + pip.stdout:
        pytest.skip(f"the package index is not reachable: {pip.stderr.strip()[-200:]}")
    assert pip.returncode == 0, pip.stderr
    return venv


def _edgekit(venv: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EDGEKIT_PROFILE_PATH")}
    return _run([str(venv / "bin" / "edgekit"), *args], timeout=120, env=env, cwd=venv)


def test_the_core_install_has_no_framework(core_env: Path) -> None:
    probe = f"import importlib.util as u; print([m for m in {FRAMEWORKS!r} if u.find_spec(m)])"
    result = _run([str(core_env / "bin" / "python"), "-c", probe], cwd=core_env)
    assert result.stdout.strip() == "[]", result.stdout


def test_help_and_profiles_work_in_the_core(core_env: Path) -> None:
    helped = _edgekit(core_env, "--help")
    assert helped.returncode == 0 and "compare" in helped.stdout, helped.stderr
    listed = _edgekit(core_env, "profiles", "list")
    assert listed.returncode == 0, listed.stderr
    assert "rpi4" in listed.stdout


def test_compare_works_in_the_core(core_env: Path, tmp_path: Path) -> None:
    a, b = two_reports(tmp_path)
    outputs = {}
    for fmt in ("table", "json", "html"):
        result = _edgekit(core_env, "compare", a, b, "--format", fmt)
        assert result.returncode == 0, (fmt, result.stderr)
        outputs[fmt] = result.stdout
    assert "ratio = candidate/baseline" in outputs["table"]
    assert len(json.loads(outputs["json"])["pairs"]) == 1
    assert "<html" in outputs["html"].lower() and "data:image/png;base64" in outputs["html"]


def test_inspect_onnx_names_the_extra(core_env: Path, shared_models: Path) -> None:
    result = _edgekit(core_env, "inspect", str(shared_models / "light_squeezenet.onnx"))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "pip install 'edgekit[onnx]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_pass_missing_its_framework_names_the_extra() -> None:
    from edgekit.errors import MissingDependencyError
    from edgekit.optimize.passes import PASSES, PassInfo

    assert PASSES["quant_openvino"].modules == ("openvino", "nncf")
    missing = PassInfo("x", "m:C", ("onnx",), None, "graph", modules=("edgekit_no_such_fw",))
    with pytest.raises(MissingDependencyError, match=r"pip install 'edgekit\[all\]'"):
        missing.require()
