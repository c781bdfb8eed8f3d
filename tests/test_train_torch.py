"""`edgekit train --framework torch`: each recipe in PyTorch, saved as a `.pt2` the rest reads.

Real torch training on digits (bundled with scikit-learn), kept short: the CNN runs
through the CLI on the whole training split for 3 epochs (93% here; the bar is 90%),
the sequence recipes for one epoch on 200 samples through the API. Each `.pt2` is
read back by `inspect` and scored by `eval` with the train's own feed
(preprocess.json), which must give exactly the accuracy that train reported.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import InputError
from tests.conftest import assert_user_error, run_cli

torch = pytest.importorskip("torch", reason="the torch extra is not installed (edgekit[torch])")

from edgekit.evaluate import evaluate  # noqa: E402
from edgekit.inspect import inspect_model  # noqa: E402
from edgekit.train import output_files, train  # noqa: E402

QUICK = {"epochs": 1, "max_train": 200, "progress": False, "framework": "torch"}
CNN_BAR = 0.90  # 3 epochs on digits' 1222 training samples; this seed reaches 93.0%


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("torch-train") / "cnn"
    proc = run_cli(
        "train", "--recipe", "cnn", "--framework", "torch", "--dataset", "digits",
        "--out", str(out), "--epochs", "3", "--json", timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, json.loads(proc.stdout)


def test_cnn_cli_writes_a_pt2_folder_that_inspect_and_eval_read(cnn):
    out, metrics = cnn
    assert sorted(p.name for p in out.iterdir()) == sorted(output_files("torch"))
    assert metrics["framework"] == "torch" and metrics["versions"]["torch"] == torch.__version__
    assert metrics["test"]["accuracy"] >= CNN_BAR, metrics["test"]
    assert metrics["options"]["augment"] is True and metrics["epochs_run"] == 3

    proc = run_cli("inspect", str(out / "model.pt2"), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(proc.stdout)
    assert info["format"] == "torch"
    (inp,) = info["inputs"]
    # The Keras recipe's layout: NHWC images, a dynamic batch, named "input".
    assert inp["name"] == "input" and inp["shape"][1:] == [28, 28, 1]
    assert not str(inp["shape"][0]).isdigit()
    assert info["params"] == metrics["parameters"]
    assert info["ops"].get("aten.conv2d", 0) == 2

    proc = run_cli("eval", str(out / "model.pt2"), "--dataset", "digits", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    scored = json.loads(proc.stdout)
    assert scored["runtime"] == "torch" and scored["preprocess"].endswith("preprocess.json")
    assert scored["accuracy"] == metrics["test"]["accuracy"]
    assert scored["errors"] == metrics["test"]["errors"]


@pytest.mark.parametrize("recipe", ["lstm", "transformer"])
def test_sequence_recipes_write_a_pt2_that_eval_scores_the_same(recipe, tmp_path):
    r = train(recipe, "digits", tmp_path / recipe, **QUICK)
    assert r.model_path.name == "model.pt2"
    info = inspect_model(r.model_path, runtimes=["torch"])
    assert info["inputs"][0]["shape"][1:] == [28, 28]  # [batch, rows, columns], as Keras
    assert info["runtimes"]["torch"]["ok"], info["runtimes"]
    ops = info["ops"]
    if recipe == "lstm":
        # unrolled, as the Keras recipe: one cell per image row, no recurrent op or loop
        assert ops.get("aten.lstm_cell") == 28, ops
        assert not any(op.startswith("aten.lstm.") or "while" in op for op in ops), ops
    else:
        assert "aten.layer_norm" in ops or "aten.native_layer_norm" in ops, ops
    scored = evaluate(r.model_path, "digits")
    assert scored.accuracy == r.test_accuracy
    assert 0.1 < r.test_accuracy <= 1.0  # one epoch on 200 samples beats chance


def test_same_seed_same_model(tmp_path):
    kw = {**QUICK, "max_train": 64, "augment": True}
    a = train("cnn", "digits", tmp_path / "a", seed=5, **kw)
    b = train("cnn", "digits", tmp_path / "b", seed=5, **kw)
    assert a.history["loss"] == b.history["loss"] and a.test_accuracy == b.test_accuracy
    wa = torch.export.load(str(a.model_path)).state_dict
    wb = torch.export.load(str(b.model_path)).state_dict
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_early_stopping_restores_the_best_weights(tmp_path):
    from edgekit.data import Preprocess, load_dataset

    r = train(
        "lstm", "digits", tmp_path / "es", epochs=30, lr=2e-2, lr_schedule="constant",
        patience=1, augment=False, max_train=100, progress=False, framework="torch",
    )  # fmt: skip
    val_loss = r.history["val_loss"]
    assert r.metrics["stopped_early"] and r.epochs_run < 30
    assert r.epochs_run == r.best_epoch + 1
    pre = Preprocess.load(r.out_dir / "preprocess.json")
    ds = load_dataset("digits", preprocess=pre, max_train=100)
    module = torch.export.load(str(r.model_path)).module()
    with torch.no_grad():
        probs = module(torch.from_numpy(ds.x_val)).numpy()
    loss = float(-np.log(probs[np.arange(len(ds.y_val)), ds.y_val]).mean())
    assert loss == pytest.approx(min(val_loss), rel=1e-4) and loss < val_loss[-1]


def test_bad_options_are_one_sentence(tmp_path):
    proc = run_cli(
        "train", "--recipe", "cnn", "--framework", "torch", "--dataset", "digits",
        "--out", str(tmp_path / "x"), "--dropout", "1.5",
    )  # fmt: skip
    assert_user_error(proc, "--dropout must be in [0, 1)")
    with pytest.raises(InputError, match="--framework must be one of keras, torch, not 'jax'"):
        train("cnn", "digits", tmp_path / "y", framework="jax")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
