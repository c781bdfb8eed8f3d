"""A user's own Keras model and own npz (issue 18): every verb feeds the data the way the
model was trained, agrees with Keras's own accuracy, and says how it fed it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.data import read_source
from edgekit.data.feed import CHANCE_FACTOR, FeedFlags, near_chance, plan_feed
from edgekit.evaluate import evaluate
from edgekit.model import load
from tests.conftest import run_cli

pytest.importorskip("tensorflow")


def _digits_u8() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits as uint8 images (8, 8, 1), a fixed train/test split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.round(d.images * (255 / 16)).astype(np.uint8)[..., None]
    y = d.target.astype(np.int64)
    idx = np.random.default_rng(0).permutation(len(x))
    tr, te = idx[:1400], idx[1400:]
    return x[tr], y[tr], x[te], y[te]


def _train(x: np.ndarray, y: np.ndarray, path: Path, epochs: int = 12):
    """A small CNN trained outside edgekit on already preprocessed float inputs."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=x.shape[1:]),
        keras.layers.Conv2D(8, 3, activation="relu", padding="same"),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ])  # fmt: skip
    if epochs:
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    model.save(path)
    return model


def _keras_accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    return float((model.predict(x, verbose=0).argmax(1) == y).mean())


MEAN, STD = 0.3, 0.4


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """A float model (inputs 0..1), a mean/std model, their npz files and Keras's scores."""
    root = tmp_path_factory.mktemp("own")
    xtr, ytr, xte, yte = _digits_u8()
    ftr = xtr.astype(np.float32) * np.float32(1 / 255)
    fte = xte.astype(np.float32) * np.float32(1 / 255)
    np.savez(root / "float.npz", x=ftr, y=ytr, x_test=fte, y_test=yte)
    np.savez(root / "u8.npz", x=xtr, y=ytr, x_test=xte, y_test=yte)
    (root / "plain").mkdir()
    (root / "norm").mkdir()
    plain = _train(ftr, ytr, root / "plain" / "model.keras")
    norm_in = (fte - np.float32(MEAN)) / np.float32(STD)
    norm = _train((ftr - np.float32(MEAN)) / np.float32(STD), ytr, root / "norm" / "model.keras")
    return {
        "root": root,
        "plain": root / "plain" / "model.keras",
        "norm": root / "norm" / "model.keras",
        "plain_acc": _keras_accuracy(plain, fte, yte),
        "norm_acc": _keras_accuracy(norm, norm_in, yte),
    }


def test_float_npz_is_fed_as_stored(own):
    r = evaluate(own["plain"], f"npz:{own['root'] / 'float.npz'}")
    assert own["plain_acc"] > 0.8
    assert r.accuracy == pytest.approx(own["plain_acc"], abs=1e-9)
    assert r.feed["source"] == "guess"
    assert "feeding x as stored: float32 in [0, 1]" in r.feed["description"]
    assert r.feed["preprocess"]["scale"] == 1.0
    assert r.warnings == []


def test_uint8_npz_is_scaled(own):
    r = evaluate(own["plain"], f"npz:{own['root'] / 'u8.npz'}")
    assert r.accuracy == pytest.approx(own["plain_acc"], abs=1e-9)
    assert r.feed["preprocess"]["scale"] == pytest.approx(1 / 255)


def test_mean_std_flags(own):
    data = f"npz:{own['root'] / 'float.npz'}"
    r = evaluate(own["norm"], data, feed=FeedFlags(mean=(MEAN,), std=(STD,)))
    assert r.accuracy == pytest.approx(own["norm_acc"], abs=1e-9)
    assert r.feed["source"] == "flags" and r.preprocess == "flags"
    assert r.feed["origin"] == "--mean 0.3 --std 0.4"
    # Without the flags the same data misses how the model was trained.
    unflagged = evaluate(own["norm"], data)
    assert unflagged.accuracy < r.accuracy


def test_cli_eval_flags_and_as_is(own):
    data = f"npz:{own['root'] / 'float.npz'}"
    res = run_cli("eval", str(own["norm"]), "--dataset", data, "--mean", "0.3", "--std", "0.4",
                  "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["accuracy"] == pytest.approx(own["norm_acc"], abs=1e-9)
    res = run_cli("eval", str(own["plain"]), "--dataset", data, "--as-is", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["accuracy"] == pytest.approx(own["plain_acc"], abs=1e-9)
    res = run_cli("eval", str(own["plain"]), "--dataset", data, "--resize", "0,3")
    assert res.returncode == 2


def test_saved_preprocess_wins(own, tmp_path):
    from edgekit.data import Preprocess

    raw = read_source(f"npz:{own['root'] / 'float.npz'}")
    pre = Preprocess("array", "array", (8, 8, 1), scale=2.0)
    pre.save(tmp_path / "preprocess.json")
    plan = plan_feed(load(own["plain"]).signature, raw, tmp_path / "preprocess.json")
    assert plan.source == "saved file" and plan.preprocess.scale == 2.0


def test_every_verb_feeds_alike(own, tmp_path):
    """eval and optimize (calibration and evaluation) score the same model alike."""
    from edgekit.optimize import optimize

    data = f"npz:{own['root'] / 'float.npz'}"
    r = evaluate(own["plain"], data)
    res = optimize(own["plain"], "x86-avx2", out=tmp_path / "opt", quantize="fp32",
                   calib_data=data, eval_data=data, measure=False)  # fmt: skip
    rep = json.loads(res.report_path.read_text())
    assert rep["baseline"]["accuracy"] == pytest.approx(r.accuracy, abs=1e-6)  # rounded
    assert rep["data"]["feed"]["source"] == "guess"
    assert rep["data"]["feed"]["description"] == r.feed["description"]


def test_deploy_feeds_calibration_alike(own, tmp_path):
    from edgekit.deploy import deploy

    data = f"npz:{own['root'] / 'float.npz'}"
    b = deploy(own["plain"], "rpi4", tmp_path / "bundle", precision="int8", measure=False,
               calib_data=data, eval_data=data)  # fmt: skip
    # int8 parity ran on the calibration data, fed as calibration was, and says so
    parity = b.manifest["measurements"]["parity"]
    assert parity["passed"] and parity["inputs"]["source"] == "calibration data"
    assert parity["inputs"]["data"] == data and parity["inputs"]["feed"] == "guess"
    assert parity["inputs"]["count"] == parity["n_samples"] == 32
    opt = b.manifest["optimization"]["optimize"]
    assert opt["baseline_accuracy"] == pytest.approx(own["plain_acc"], abs=1e-6)
    assert opt["feed"]["source"] == "guess"
    # int8 calibrated on the data as the model takes it stays near the float accuracy
    assert opt["accuracy"] > own["plain_acc"] - 0.03


def test_chance_rule():
    assert near_chance(0.1, 10) and near_chance(CHANCE_FACTOR / 10, 10)
    assert not near_chance(0.2, 10) and not near_chance(None, 10)


def test_chance_baseline_is_never_within_budget(tmp_path):
    from edgekit.optimize import optimize

    xtr, ytr, xte, yte = _digits_u8()
    np.savez(tmp_path / "d.npz", x=xtr, y=ytr, x_test=xte, y_test=yte)
    untrained = tmp_path / "m" / "model.keras"
    untrained.parent.mkdir()
    _train(xtr.astype(np.float32) / 255, ytr, untrained, epochs=0)
    data = f"npz:{tmp_path / 'd.npz'}"
    r = evaluate(untrained, data)
    assert near_chance(r.accuracy, 10)
    assert r.warnings and "BASELINE AT CHANCE" in r.warnings[0]
    res = run_cli("eval", str(untrained), "--dataset", data)
    assert res.returncode == 0 and "BASELINE AT CHANCE" in res.stderr
    kw = dict(quantize="fp32", calib_data=data, eval_data=data, measure=False)
    res = optimize(untrained, "x86-avx2", out=tmp_path / "o1", max_accuracy_drop=1, **kw)
    assert not res.met_budget
    assert any("BASELINE AT CHANCE" in w for w in res.warnings)
    res = optimize(untrained, "x86-avx2", out=tmp_path / "o2", max_accuracy_drop=1,
                   accept_low_baseline=True, **kw)  # fmt: skip
    assert res.met_budget


def test_bench_input_dataset_npz_is_fed_alike(own):
    from edgekit.bench.inputs import load_npz

    sig = load(own["plain"]).signature
    feeds = load_npz(own["root"] / "u8.npz", sig)
    raw = read_source(f"npz:{own['root'] / 'float.npz'}")
    want = plan_feed(sig, raw).load(raw, splits=("test",)).x_test
    got = np.concatenate([f[sig.inputs[0].name] for f in feeds])
    np.testing.assert_allclose(got, want[: len(got)], atol=1e-6)


def test_bench_input_takes_the_feed_flags_and_records_them(own, tmp_path):
    """bench --input with --scale/--mean/--std feeds what eval feeds with the same flags
    (plan_feed decides for both), and its report says the feed came from the flags."""
    from edgekit.bench.inputs import npz_feeds

    sig = load(own["norm"]).signature
    flags = FeedFlags(scale=1 / 255, mean=(MEAN,), std=(STD,))
    feeds, record = npz_feeds(own["root"] / "u8.npz", sig, flags)
    raw = read_source(f"npz:{own['root'] / 'float.npz'}")
    want = plan_feed(sig, raw, None, FeedFlags(mean=(MEAN,), std=(STD,))).load(raw).x_test
    got = np.concatenate([f[sig.inputs[0].name] for f in feeds])
    np.testing.assert_allclose(got, want[: len(got)], atol=1e-5)
    assert abs(float(got.mean())) < 1.5  # normalized, not the 0..255 or 0..1 of the file
    assert record is not None and record["source"] == "flags"

    from edgekit.convert import convert

    # bench times a runtime's model: the Keras model as TFLite (same input, same feed)
    tfl = convert(own["norm"], "tflite", tmp_path / "norm.tflite", verify=False).model.path
    out = tmp_path / "bench.json"
    res = run_cli("bench", str(tfl), "--input", str(own["root"] / "u8.npz"),
                  "--scale", str(1 / 255), "--mean", "0.3", "--std", "0.4", "--min-runs", "3",
                  "--min-time", "0.05", "--warmup", "1", "--out", str(out))  # fmt: skip
    assert res.returncode == 0, res.stderr
    feed = json.loads(out.read_text())["protocol"]["feed"]
    assert feed["source"] == "flags" and "--mean 0.3 --std 0.4" in feed["origin"]
    assert feed["preprocess"]["mean"] == [MEAN] and feed["preprocess"]["std"] == [STD]
    # The flags apply to a dataset npz only; one named by input is said in one sentence.
    np.savez(tmp_path / "named.npz", **{sig.inputs[0].name: got[:2]})
    res = run_cli("bench", str(tfl), "--input", str(tmp_path / "named.npz"), "--scale", "2")
    assert res.returncode == 2 and "apply to a dataset npz" in res.stderr
