"""Fixtures shared by the test modules: real models on disk, and the CLI in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MODELS = ROOT.parent / "shared" / "models"


@pytest.fixture(scope="session")
def shared_models() -> Path:
    """../shared/models, the real models nobody here made; skips in a user's clone."""
    if not SHARED_MODELS.is_dir():
        pytest.skip(f"{SHARED_MODELS} is absent (it exists in CI, not in a user's clone)")
    return SHARED_MODELS


def run_cli(
    *args: str,
    cwd: Path | None = ROOT,
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """Run `python -m edgekit ARGS` as a user would, capturing text output.

    The tester's own EDGEKIT_PROFILE_PATH is left out so that shipped profiles are what
    the tests see; `env` adds or overrides variables.
    """
    full_env = {k: v for k, v in os.environ.items() if k != "EDGEKIT_PROFILE_PATH"}
    full_env.update(PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "edgekit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
    )


def invoke_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`edgekit ARGS` in this process through `edgekit.cli.run` under click's CliRunner
    isolation: for commands that load no framework (argument errors, help, profiles),
    where a fresh interpreter per call only costs time. Same result shape as `run_cli`."""
    from click.testing import CliRunner

    from edgekit.cli import run

    full_env = {"EDGEKIT_PROFILE_PATH": None, **(env or {})}
    with CliRunner().isolation(env=full_env) as (out, err, _):
        rc = run(list(args))
    return subprocess.CompletedProcess(
        list(args), rc, out.getvalue().decode(), err.getvalue().decode()
    )


def interruptible() -> None:
    """Popen's preexec_fn for a child that a test will interrupt: Ctrl-C acts as at a terminal.

    A shell starts background jobs with SIGINT ignored, and Python keeps an inherited
    SIG_IGN; without this, a suite run with `&` would send SIGINTs that nobody sees.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def fresh_venv(requirements: Path, folder: Path) -> str:
    """The Python of a new venv in `folder` holding only what `requirements` (a bundle's
    requirements.txt) names; skips when no package index is reachable."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=300)
    py = str(folder / "bin" / "python")
    pip = subprocess.run([py, "-m", "pip", "install", "-q", "-r", str(requirements)],
                         capture_output=True, text=True, timeout=900)  # fmt: skip
    if pip.returncode != 0 and "Could not find a version" in pip.stderr + pip.stdout:
        pytest.skip(f"no package index reachable: {pip.stderr.strip().splitlines()[-1]}")
    assert pip.returncode == 0, pip.stderr
    return py


def installed(python: str) -> str:
    """`pip freeze` of the venv whose interpreter is `python`."""
    return subprocess.run([python, "-m", "pip", "freeze"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit code 2, one sentence on stderr that contains every fragment, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    error_lines = [ln for ln in result.stderr.splitlines() if ln.startswith("edgekit: error:")]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in error_lines[0], (fragment, error_lines[0])


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny Keras CNN in every format edgekit reads, made with the real converters."""
    import keras
    import openvino as ov
    import tensorflow as tf
    import tf2onnx

    out = tmp_path_factory.mktemp("tiny")
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probs")(x))
    paths = {
        "keras": out / "tiny.keras",
        "h5": out / "tiny.h5",
        "savedmodel": out / "tiny_savedmodel",
        "tflite": out / "tiny.tflite",
        "onnx": out / "tiny.onnx",
        "openvino": out / "tiny.xml",
    }
    model.save(paths["keras"])
    model.save(paths["h5"])
    model.export(str(paths["savedmodel"]), verbose=False)
    paths["tflite"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    spec = (tf.TensorSpec((None, 8, 8, 1), tf.float32, name="image"),)
    tf2onnx.convert.from_keras(
        model, input_signature=spec, opset=13, output_path=str(paths["onnx"])
    )
    ov.save_model(
        ov.convert_model(str(paths["onnx"])), str(paths["openvino"]), compress_to_fp16=False
    )
    return paths


def tiny_onnx(path: Path, width: int = 32, layers: int = 2, batch: int | str = 1) -> Path:
    """A MatMul+Relu stack with input 'x' [1, width] float32, built in code."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, prev = [], [], "x"
    for i in range(layers):
        w = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"]))
        out = "y" if i == layers - 1 else f"r{i}"
        nodes.append(helper.make_node("Relu", [f"m{i}"], [out]))
        prev = out
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, width])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def int8_tflite(path: Path, size: int = 8, channels: int = 4) -> Path:
    """A small Keras CNN (`size`x`size`x1 in) converted to full int8 TFLite with int8 I/O."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    inp = keras.Input((size, size, 1), batch_size=1, name="image")
    x = keras.layers.Conv2D(channels, 3, activation="relu", padding="same")(inp)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inp, keras.layers.Dense(3, name="logits")(x))
    rng = np.random.default_rng(0)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: (
        [rng.random((1, size, size, 1), dtype=np.float32)] for _ in range(16)
    )
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    path.write_bytes(conv.convert())
    return path


@pytest.fixture(scope="session")
def int8_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`int8_tflite` at 8x8x1: a full-int8 model every TFLM and Vela test can run."""
    return int8_tflite(tmp_path_factory.mktemp("int8") / "cnn_int8.tflite")


@pytest.fixture(scope="session")
def onnx2tf_env() -> None:
    """The real onnx2tf environment, made once per CI run by `edgekit tools install`
    (cached in the tools folder after that); skips only where pip cannot reach a registry."""
    res = run_cli("tools", "install", "onnx2tf", timeout=1500)
    if res.returncode == 2 and "cannot reach the package registry" in res.stderr:
        pytest.skip(f"no package registry to create the onnx2tf environment: {res.stderr.strip()}")
    assert res.returncode == 0, res.stderr
