"""Quiet by default (issue 18, item 4): the frameworks' log lines do not reach the
terminal from convert or eval; edgekit's own output does; --verbose shows theirs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT

pytest.importorskip("tensorflow")

# Lines only a framework writes: absl/glog prefixes, TFLite's converter and delegate,
# TensorFlow's start-up banners, Python warnings, NNCF progress and setuptools.
FRAMEWORK_LINES = re.compile(
    r"^[IWE]\d{4} |absl|oneDNN|XNNPACK|fully_quantize|inference_type|UserWarning|"
    r"DeprecationWarning|setuptools|Saved artifact at|cuda|tensorflow/|INFO: ",
    re.MULTILINE,
)


def _edgekit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m edgekit ARGS` with none of the tester's quieting variables."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TF_", "EDGEKIT_", "ABSL_"))}  # fmt: skip
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=600)  # fmt: skip


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    import keras

    root = tmp_path_factory.mktemp("quiet")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])  # fmt: skip
    model.save(root / "model.keras")
    rng = np.random.default_rng(0)
    np.savez(root / "d.npz", x=rng.random((40, 8, 8, 1), dtype=np.float32),
             y=np.arange(40) % 10)  # fmt: skip
    return root


def test_convert_and_eval_print_edgekit_output_only(small):
    res = _edgekit("convert", "model.keras", "--to", "tflite", "--out", "m.tflite", cwd=small)
    assert res.returncode == 0, res.stderr
    assert not FRAMEWORK_LINES.search(res.stdout + res.stderr), res.stdout + res.stderr
    assert (small / "m.tflite").is_file() and res.stdout.strip()  # edgekit said what it did
    res = _edgekit("eval", "m.tflite", "--dataset", "npz:d.npz", cwd=small)
    assert res.returncode == 0, res.stderr
    assert not FRAMEWORK_LINES.search(res.stdout + res.stderr), res.stdout + res.stderr
    assert "accuracy" in res.stdout and "feed:" in res.stderr


def test_verbose_shows_the_frameworks(small):
    if not (small / "m.tflite").is_file():
        pytest.skip("needs the converted model of the test above")
    res = _edgekit("--verbose", "eval", "m.tflite", "--dataset", "npz:d.npz", cwd=small)
    assert res.returncode == 0, res.stderr
    assert FRAMEWORK_LINES.search(res.stdout + res.stderr)


def test_a_failure_replays_what_was_captured(tmp_path):
    """The capture is replayed when the block fails, and kept to itself when it succeeds."""
    script = (
        "import os, sys\n"
        "from edgekit.cli._quiet import quiet_output\n"
        "with quiet_output():\n"
        "    os.write(2, b'C-LEVEL NOISE\\n')\n"
        "    print('edgekit line')\n"
        "    sys.exit(int(sys.argv[1]))\n"
    )
    (tmp_path / "s.py").write_text(script)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    ok = subprocess.run([sys.executable, str(tmp_path / "s.py"), "0"], capture_output=True,
                        text=True, env=env, cwd=tmp_path)  # fmt: skip
    assert ok.stdout == "edgekit line\n" and "C-LEVEL" not in ok.stderr
    bad = subprocess.run([sys.executable, str(tmp_path / "s.py"), "1"], capture_output=True,
                         text=True, env=env, cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 1 and "C-LEVEL NOISE" in bad.stderr


@pytest.mark.slow
def test_demo_prints_no_framework_lines(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "EDGEKIT_", "ABSL_"))}
    env["PYTHONPATH"] = str(ROOT)
    res = subprocess.run([sys.executable, str(ROOT / "samples" / "demo.py"), "--out",
                          str(tmp_path), "--epochs", "1"], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=3600)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert not FRAMEWORK_LINES.search(res.stdout + res.stderr), res.stdout + res.stderr
