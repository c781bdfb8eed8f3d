"""Training recipes end to end (edgekit.train) with real Keras, on small digits subsets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgekit.errors import InputError
from edgekit.train import OUTPUT_FILES, train
from tests.conftest import run_cli

QUICK = {"epochs": 1, "max_train": 200, "progress": False}


def _model(path: Path):
    import keras

    return keras.saving.load_model(path, compile=False)


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "cnn"
    return train("cnn", "digits", out, epochs=2, max_train=300, progress=False)


def test_cnn_writes_every_output(cnn_run):
    out = cnn_run.out_dir
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    for name in ("curves.png", "confusion.png", "predictions.png"):
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.width >= 400 and im.height >= 300
    assert not any(p.name.startswith(".cnn.tmp") for p in out.parent.iterdir())


def test_cnn_is_the_reference_architecture(cnn_run):
    model = _model(cnn_run.model_path)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "InputLayer",
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Flatten",
        "Dense",
        "Dense",
    ]
    assert model.input_shape == (None, 28, 28, 1)
    assert [layer.filters for layer in model.layers if hasattr(layer, "filters")] == [32, 64]
    assert model.layers[-2].units == 128 and model.layers[-1].units == 10
    assert model.layers[-1].activation.__name__ == "softmax"


def test_metrics_and_history_record_the_run(cnn_run):
    out = cnn_run.out_dir
    metrics = json.loads((out / "metrics.json").read_text())
    history = json.loads((out / "history.json").read_text())
    assert metrics["test"]["accuracy"] == pytest.approx(cnn_run.test_accuracy)
    assert metrics["seed"] == 0 and metrics["options"]["epochs"] == 2
    assert metrics["options"]["augment"] is True  # the cnn recipe's default
    cm = np.array(metrics["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == metrics["test"]["samples"]
    assert np.trace(cm) == metrics["test"]["samples"] - metrics["test"]["errors"]
    assert len(metrics["per_class"]) == 10
    assert {"precision", "recall", "support"} <= set(metrics["per_class"][0])
    assert metrics["wall_time_s"] > 0
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert len(history[key]) == 2, key
    assert history["lr"][1] < history["lr"][0]  # cosine schedule


def test_saved_model_and_preprocess_reproduce_test_accuracy(cnn_run):
    from edgekit.data import Preprocess, load_dataset

    pre = Preprocess.load(cnn_run.out_dir / "preprocess.json")
    ds = load_dataset("digits", preprocess=pre)
    pred = _model(cnn_run.model_path).predict(ds.x_test, verbose=0).argmax(1)
    assert float((pred == ds.y_test).mean()) == pytest.approx(cnn_run.test_accuracy)
    assert cnn_run.test_accuracy > 0.3  # two epochs on 300 samples beat chance (0.1)


@pytest.mark.parametrize("recipe", ["lstm", "transformer"])
def test_sequence_recipes_train(recipe, tmp_path):
    r = train(recipe, "digits", tmp_path / recipe, **QUICK)
    model = _model(r.model_path)
    assert model.input_shape == (None, 28, 28)
    assert 0.0 <= r.test_accuracy <= 1.0
    assert (tmp_path / recipe / "metrics.json").is_file()
    if recipe == "transformer":
        names = {type(layer).__name__ for layer in model.layers}
        assert {"MultiHeadAttention", "LayerNormalization", "Embedding"} <= names


def test_same_seed_same_result_other_seed_differs(tmp_path):
    a = train("cnn", "digits", tmp_path / "a", seed=3, **QUICK)
    b = train("cnn", "digits", tmp_path / "b", seed=3, **QUICK)
    c = train("cnn", "digits", tmp_path / "c", seed=4, **QUICK)
    assert a.test_accuracy == b.test_accuracy
    assert a.history["loss"] == b.history["loss"]
    wa = _model(a.model_path).get_weights()
    wb = _model(b.model_path).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(wa, wb, strict=True))
    assert c.history["loss"] != a.history["loss"]


def test_reproducible_across_processes(tmp_path):
    """The same command twice gives the same test accuracy (and the same loss)."""
    code = (
        "import json,sys; from edgekit.train import train; "
        "r = train('cnn', 'digits', sys.argv[1], epochs=1, max_train=150, progress=False); "
        "print(json.dumps([r.test_accuracy, r.history['loss']]))"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / f"r{i}")],
            capture_output=True,
            text=True,
            timeout=180,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
        for i in range(2)
    ]
    assert runs[0] == runs[1]


def test_regularization_options_shape_the_model(tmp_path):
    r = train(
        "cnn", "digits", tmp_path / "reg", l1=1e-5, l2=1e-4, dropout=0.25, augment=False, **QUICK
    )
    model = _model(r.model_path)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Dropout") == 2
    conv = model.get_layer("conv1")
    assert conv.kernel_regularizer.get_config() == pytest.approx({"l1": 1e-5, "l2": 1e-4})
    assert not any(k.startswith("Random") for k in kinds)
    opts = r.metrics["options"]
    assert (opts["l1"], opts["l2"], opts["dropout"], opts["augment"]) == (1e-5, 1e-4, 0.25, False)


def test_early_stopping_restores_best_weights(tmp_path):
    from edgekit.data import Preprocess, load_dataset

    r = train(
        "cnn",
        "digits",
        tmp_path / "es",
        epochs=40,
        lr=3e-3,
        lr_schedule="constant",
        patience=2,
        augment=False,
        max_train=120,
        progress=False,
    )
    val_loss = r.history["val_loss"]
    assert r.epochs_run < 40 and r.metrics["stopped_early"]
    assert r.best_epoch == int(np.argmin(val_loss)) + 1
    assert r.epochs_run == r.best_epoch + 2
    # The saved weights are the best epoch's: its val loss, not the last epoch's.
    pre = Preprocess.load(r.out_dir / "preprocess.json")
    ds = load_dataset("digits", preprocess=pre, max_train=120)
    probs = _model(r.model_path).predict(ds.x_val, verbose=0)
    loss = float(-np.log(probs[np.arange(len(ds.y_val)), ds.y_val]).mean())
    assert loss == pytest.approx(min(val_loss), rel=1e-3)
    assert loss < val_loss[-1]


def test_plateau_schedule_records_lr(tmp_path):
    r = train("lstm", "digits", tmp_path / "p", lr_schedule="plateau", **QUICK)
    assert r.history["lr"] == [pytest.approx(r.metrics["options"]["lr"])]


def test_existing_folder_keeps_foreign_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    train("lstm", "digits", out, **QUICK)
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "metrics.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_sequence_npz_trains_without_augmentation(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(120) % 3
    x = rng.normal(size=(120, 6, 4)).astype(np.float32) + y[:, None, None]
    np.savez(tmp_path / "seq.npz", x=x, y=y)
    r = train("lstm", f"npz:{tmp_path / 'seq.npz'}", tmp_path / "seq", epochs=3, progress=False)
    assert r.metrics["options"]["augment"] is False
    assert r.metrics["input_shape"] == [6, 4]
    with pytest.raises(InputError, match="--augment needs image data"):
        train("lstm", f"npz:{tmp_path / 'seq.npz'}", tmp_path / "seq2", augment=True)


def test_cnn_on_an_rgb_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for c, name in enumerate(["red", "green"]):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(12):
            img = rng.integers(0, 60, (20, 24, 3), dtype=np.uint8)
            img[..., c] += 180
            Image.fromarray(img, "RGB").save(tmp_path / "imgs" / name / f"{i}.png")
    r = train("cnn", f"images:{tmp_path / 'imgs'}", tmp_path / "rgb", epochs=3, progress=False)
    assert r.metrics["input_shape"] == [28, 28, 3]
    assert r.metrics["class_names"] == ["green", "red"]
    assert r.test_accuracy == 1.0  # the colour gives the class away
    with Image.open(tmp_path / "rgb" / "predictions.png") as im:
        assert im.width > 400


@pytest.mark.parametrize(
    "kwargs,text",
    [
        ({"epochs": 0}, "--epochs"),
        ({"dropout": 1.0}, "--dropout"),
        ({"lr": -1.0}, "--lr"),
        ({"lr_schedule": "linear"}, "--lr-schedule"),
        ({"patience": 2, "val_split": 0.0}, "validation split"),
        ({"framework": "jax"}, "--framework must be one of keras, torch, not 'jax'"),
    ],
)
def test_bad_options_are_one_sentence(kwargs, text, tmp_path):
    with pytest.raises(InputError, match=text):
        train("cnn", "digits", tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_unknown_recipe(tmp_path):
    with pytest.raises(InputError, match="valid recipes: cnn, lstm, transformer"):
        train("resnet", "digits", tmp_path / "x")


def test_cli_train_and_help(tmp_path):
    out = tmp_path / "cli"
    proc = run_cli(
        "train",
        "--recipe",
        "cnn",
        "--dataset",
        "digits",
        "--out",
        str(out),
        "--epochs",
        "1",
        "--no-augment",
        "--seed",
        "7",
        "--json",
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads(proc.stdout)
    assert metrics["seed"] == 7 and metrics["options"]["augment"] is False
    assert "epoch" not in proc.stderr.lower() or "━" not in proc.stderr  # no bar off a TTY
    assert json.loads((out / "metrics.json").read_text()) == metrics


def test_cli_bad_option_exits_2(tmp_path):
    proc = run_cli(
        "train",
        "--recipe",
        "cnn",
        "--dataset",
        "digits",
        "--out",
        str(tmp_path / "x"),
        "--dropout",
        "1.5",
        timeout=120,
    )
    assert proc.returncode == 2
    assert "--dropout must be in [0, 1)" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_unknown_framework_exits_2(tmp_path):
    proc = run_cli(
        "train", "--recipe", "cnn", "--dataset", "digits", "--out", str(tmp_path / "x"),
        "--framework", "jax", timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "'keras', 'torch'" in proc.stderr and not (tmp_path / "x").exists()


def test_every_trainer_module_defines_fit():
    import importlib.util

    from edgekit.train.base import TRAINERS, trainer_fit

    for name, trainer in TRAINERS.items():
        spec = importlib.util.find_spec(trainer.module)  # finds it without importing its framework
        assert spec is not None and spec.origin, name
        assert "\ndef fit(" in Path(spec.origin).read_text(), name
    with pytest.raises(InputError, match="one of keras, torch, not 'jax'"):
        trainer_fit("jax")


def test_help_loads_no_framework():
    code = (
        "import sys; from click.testing import CliRunner; from edgekit.cli import cli; "
        "[CliRunner().invoke(cli, [c, '--help'], catch_exceptions=False) for c in "
        "('train', 'eval')]; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'sklearn', 'matplotlib', "
        "'onnxruntime', 'openvino', 'torch') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_cli_recipe_choices_match_registry():
    from edgekit.cli.train_cmd import FRAMEWORK_NAMES, LR_SCHEDULE_NAMES, RECIPE_NAMES
    from edgekit.train import FRAMEWORKS, LR_SCHEDULES, RECIPES

    assert tuple(RECIPES) == RECIPE_NAMES
    assert LR_SCHEDULES == LR_SCHEDULE_NAMES
    assert FRAMEWORKS == FRAMEWORK_NAMES


@pytest.mark.slow
def test_cnn_full_training_meets_the_bar(tmp_path):
    r = train("cnn", "digits", tmp_path / "full", progress=False)
    assert r.test_accuracy >= 0.97
