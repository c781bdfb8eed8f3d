"""Dataset sources, splits and preprocessing (edgekit.data), and their errors via the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgekit.data import Preprocess, iter_batches, load_dataset, read_source
from edgekit.errors import DatasetError, InputError
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def digits_nhwc():
    return load_dataset("digits", layout="nhwc")


def test_digits_splits_are_fixed_and_disjoint(digits_nhwc):
    ds = digits_nhwc
    assert ds.x_train.shape[1:] == (28, 28, 1)
    assert ds.x_train.dtype == np.float32
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 1797
    assert ds.num_classes == 10
    assert set(np.unique(ds.y_test)) == set(range(10))  # stratified
    again = load_dataset("digits", layout="nhwc")
    np.testing.assert_array_equal(ds.x_test, again.x_test)
    np.testing.assert_array_equal(ds.y_train, again.y_train)
    # No test sample leaks into training (compare flattened rows).
    train_rows = {r.tobytes() for r in ds.x_train.reshape(len(ds.x_train), -1)}
    leaked = sum(r.tobytes() in train_rows for r in ds.x_test.reshape(len(ds.x_test), -1))
    assert leaked <= 2  # digits has a couple of exact duplicates across the raw set


def test_test_split_does_not_depend_on_val_split(digits_nhwc):
    other = load_dataset("digits", val_split=0.3, preprocess=digits_nhwc.preprocess)
    np.testing.assert_array_equal(other.x_test, digits_nhwc.x_test)
    np.testing.assert_array_equal(other.y_test, digits_nhwc.y_test)
    assert len(other.y_val) > len(digits_nhwc.y_val)


def test_digits_is_standardized_on_train(digits_nhwc):
    pre = digits_nhwc.preprocess
    assert pre.kind == "image" and pre.resize == (28, 28) and pre.scale == pytest.approx(1 / 16)
    assert abs(float(digits_nhwc.x_train.mean())) < 1e-3
    assert float(digits_nhwc.x_train.std()) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    "layout,shape", [("sequence", (28, 28)), ("nchw", (1, 28, 28)), ("nhwc", (28, 28, 1))]
)
def test_layouts(layout, shape):
    ds = load_dataset("digits", layout=layout, max_train=50)
    assert ds.x_train.shape == (50, *shape)
    assert ds.preprocess.input_shape == shape


def test_layouts_hold_the_same_pixels(digits_nhwc):
    seq = load_dataset("digits", layout="sequence")
    nchw = load_dataset("digits", layout="nchw")
    np.testing.assert_array_equal(seq.x_test, digits_nhwc.x_test[..., 0])
    np.testing.assert_array_equal(nchw.x_test[:, 0], digits_nhwc.x_test[..., 0])


def test_preprocess_round_trip_feeds_identically(tmp_path, digits_nhwc):
    path = digits_nhwc.preprocess.save(tmp_path / "preprocess.json")
    loaded = Preprocess.load(path)
    assert loaded == digits_nhwc.preprocess
    raw = read_source("digits")
    # The raw image a user holds, fed through the saved preprocess, equals the training feed.
    ds = load_dataset("digits", preprocess=loaded)
    np.testing.assert_array_equal(ds.x_test, digits_nhwc.x_test)
    one = loaded.apply_one(raw.x[0])
    assert one.shape == (1, 28, 28, 1)
    assert one.dtype == np.float32


def test_preprocess_find_for_and_bad_files(tmp_path, digits_nhwc):
    assert Preprocess.find_for(tmp_path / "model.tflite") is None
    digits_nhwc.preprocess.save(tmp_path / "preprocess.json")
    assert Preprocess.find_for(tmp_path / "model.tflite") == digits_nhwc.preprocess
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        Preprocess.load(tmp_path / "bad.json")
    with pytest.raises(InputError, match="layout"):
        Preprocess("image", "hwcn", (1,))


def test_guess_preprocess_from_input_shape():
    assert Preprocess.guess((None, 28, 28, 1)).layout == "nhwc"
    assert Preprocess.guess((1, 3, 32, 32)).layout == "nchw"
    assert Preprocess.guess((None, 28, 28)).layout == "array"
    with pytest.raises(InputError, match="dynamic"):
        Preprocess.guess((None, None, None, 3))


def test_npz_images_with_own_test_split(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 12, 12), dtype=np.uint8)
    y = np.arange(40) % 4 + 10  # labels need not start at 0
    xt = rng.integers(0, 256, (8, 12, 12), dtype=np.uint8)
    yt = np.arange(8) % 4 + 10
    np.savez(tmp_path / "d.npz", x=x, y=y, x_test=xt, y_test=yt)
    ds = load_dataset(f"npz:{tmp_path / 'd.npz'}", layout="nhwc", val_split=0.25)
    assert ds.class_names == ["10", "11", "12", "13"]
    np.testing.assert_array_equal(ds.y_test, yt - 10)
    assert ds.x_test.shape == (8, 28, 28, 1)
    assert ds.preprocess.scale == pytest.approx(1 / 255)
    np.testing.assert_array_equal(ds.x_test, ds.preprocess.apply(xt))
    assert len(ds.y_train) == 30 and len(ds.y_val) == 10


def test_npz_sequences_pass_through(tmp_path):
    x = np.random.default_rng(1).normal(size=(30, 5, 3)).astype(np.float32)
    np.savez(tmp_path / "s.npz", x=x, y=np.arange(30) % 2)
    ds = load_dataset(str(tmp_path / "s.npz"), layout="sequence", normalize=False)
    assert ds.preprocess.kind == "array"
    assert ds.x_train.shape[1:] == (5, 3)
    all_x = np.concatenate([ds.x_train, ds.x_val, ds.x_test])
    assert sorted(map(bytes, all_x.reshape(30, -1))) == sorted(map(bytes, x.reshape(30, -1)))


def test_sample_train_reads_a_seeded_spread_of_the_training_split(tmp_path):
    """Calibration asks for a few hundred samples: only those are read and preprocessed."""
    x = np.arange(1000, dtype=np.float32)[:, None] * np.ones((1, 4), np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(1000) % 2)
    src, kw = f"npz:{tmp_path / 'd.npz'}", {"layout": "sequence", "normalize": False}
    full = load_dataset(src, **kw)
    few = load_dataset(src, **kw, splits=("train",), sample_train=50)
    again = load_dataset(src, **kw, splits=("train",), sample_train=50)
    assert len(few.x_train) == 50 and len(few.x_val) == 0 and len(few.x_test) == 0
    assert few.info == full.info  # the splits are the same; only what is read differs
    np.testing.assert_array_equal(few.x_train, again.x_train)  # seeded
    rows = lambda d: set(np.round(d.x_train[:, 0] / d.preprocess.scale).astype(int))  # noqa: E731
    ids = np.array(sorted(rows(few)))  # the sample's row numbers in the file
    assert set(ids) <= rows(full)
    assert ids.max() - ids.min() > 800  # spread over the split, not its first rows


def _write_images(root: Path, counts: dict[str, int], mode: str = "L") -> None:
    rng = np.random.default_rng(0)
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            shape = (10 + i, 9) if mode == "L" else (10 + i, 9, 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(
                root / cls / f"{i}.png"
            )


def test_image_folder(tmp_path):
    _write_images(tmp_path / "imgs", {"cat": 6, "dog": 5}, mode="RGB")
    ds = load_dataset(f"images:{tmp_path / 'imgs'}", layout="nhwc", image_size=(16, 16))
    assert ds.class_names == ["cat", "dog"]
    assert ds.x_train.shape[1:] == (16, 16, 3)
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 11


def test_iter_batches():
    x = np.arange(10)
    assert [len(b) for b in iter_batches(x, 4)] == [4, 4, 2]
    pairs = list(iter_batches(x, 5, y=x * 2))
    np.testing.assert_array_equal(pairs[1][1], np.arange(5, 10) * 2)
    with pytest.raises(DatasetError):
        list(iter_batches(x, 0))


# ---- bad sources: one sentence, through the library and the CLI --------------------------


def _bad_sources(tmp: Path) -> dict[str, tuple[str, str]]:
    """name -> (dataset spec, text the error must contain)."""
    np.savez(tmp / "no_y.npz", x=np.zeros((5, 8, 8)))
    np.savez(tmp / "short_y.npz", x=np.zeros((5, 8, 8)), y=np.zeros(4))
    nan = np.zeros((5, 8, 8))
    nan[2, 3, 3] = np.nan
    np.savez(tmp / "nan.npz", x=nan, y=np.zeros(5))
    np.savez(
        tmp / "half_test.npz", x=np.zeros((5, 8, 8)), y=np.zeros(5), x_test=np.zeros((2, 8, 8))
    )
    (tmp / "junk.npz").write_text("not a zip")
    _write_images(tmp / "empty_class", {"a": 3})
    (tmp / "empty_class" / "b").mkdir()
    _write_images(tmp / "not_image", {"a": 3, "b": 3})
    (tmp / "not_image" / "b" / "notes.txt").write_text("hello")
    return {
        "missing file": (f"npz:{tmp / 'nope.npz'}", "does not exist"),
        "missing y": (f"npz:{tmp / 'no_y.npz'}", "no array 'y'"),
        "mismatched lengths": (f"npz:{tmp / 'short_y.npz'}", "5 samples in x but 4 labels"),
        "nan": (f"npz:{tmp / 'nan.npz'}", "NaN or Inf"),
        "half test": (f"npz:{tmp / 'half_test.npz'}", "both 'x_test' and 'y_test'"),
        "not npz": (f"npz:{tmp / 'junk.npz'}", "npz"),
        "empty class": (f"images:{tmp / 'empty_class'}", "is empty"),
        "non-image file": (f"images:{tmp / 'not_image'}", "notes.txt is not a readable image"),
        "missing dir": (f"images:{tmp / 'nowhere'}", "does not exist"),
        "unknown source": ("mnist", "valid sources: digits, npz:PATH, images:DIR"),
    }


@pytest.fixture(scope="module")
def bad_sources(tmp_path_factory):
    return _bad_sources(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "missing y",
        "mismatched lengths",
        "nan",
        "half test",
        "not npz",
        "empty class",
        "non-image file",
        "missing dir",
        "unknown source",
    ],
)
def test_bad_source_raises_one_sentence(bad_sources, case):
    spec, text = bad_sources[case]
    with pytest.raises(DatasetError) as info:
        load_dataset(spec)
    message = str(info.value)
    assert text in message
    assert "\n" not in message and message.endswith(".")


@pytest.mark.parametrize(
    "case", ["missing y", "mismatched lengths", "empty class", "non-image file", "unknown source"]
)
def test_bad_source_through_cli_exits_2(bad_sources, case, tmp_path):
    spec, text = bad_sources[case]
    out = tmp_path / "run"
    proc = run_cli("train", "--recipe", "cnn", "--dataset", spec, "--out", str(out), timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert text in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0  # one line
    assert not out.exists()
    assert not any(p.name.startswith(".run.tmp") for p in tmp_path.iterdir())


# ---- plan_feed: how a dataset feeds a model ----------------------------------------------


def _sig(*shape):
    from edgekit.signature import Signature, TensorSpec

    return Signature((TensorSpec("x", (None, *shape), "float32"),),
                     (TensorSpec("y", (None, 10), "float32"),))  # fmt: skip


def _npz(tmp_path, x):
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(len(x)) % 3)
    return read_source(f"npz:{tmp_path / 'd.npz'}")


def test_plan_feed_guess_looks_at_the_data(tmp_path):
    from edgekit.data.feed import plan_feed

    x = np.random.default_rng(0).random((12, 6, 6, 1), dtype=np.float32)
    plan = plan_feed(_sig(6, 6, 1), _npz(tmp_path, x))
    assert plan.source == "guess" and plan.preprocess.scale == 1.0
    assert plan.describe().startswith("feeding x as stored: float32 in [")
    assert "shape (N, 6, 6, 1)" in plan.describe()
    np.testing.assert_array_equal(plan.preprocess.apply(x), x)
    u8 = (x * 255).astype(np.uint8)
    plan = plan_feed(_sig(6, 6, 1), _npz(tmp_path, u8))
    assert plan.preprocess.scale == pytest.approx(1 / 255) and plan.describe().startswith(
        "preprocessing from guess"
    )
    # float images of another size are resized to the model's, and the line says so
    plan = plan_feed(_sig(12, 12, 1), _npz(tmp_path, x))
    assert plan.preprocess.input_shape == (12, 12, 1) and "resized to 12x12" in plan.describe()


def test_plan_feed_flags_and_as_is(tmp_path):
    from edgekit.data.feed import FeedFlags, plan_feed

    x = np.random.default_rng(0).random((12, 6, 6, 3), dtype=np.float32)
    raw = _npz(tmp_path, x)
    flags = FeedFlags(mean=(0.1, 0.2, 0.3), std=(0.5, 0.5, 0.5), layout="nchw")
    plan = plan_feed(_sig(3, 6, 6), raw, flags=flags)
    assert (
        plan.source == "flags"
        and plan.origin == "--mean 0.1,0.2,0.3 --std 0.5,0.5,0.5 --layout nchw"
    )
    out = plan.preprocess.apply(x)
    want = ((x - np.float32([0.1, 0.2, 0.3])) / np.float32(0.5)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(out, want, rtol=1e-6)
    assert plan_feed(_sig(6, 6, 3), raw, flags=FeedFlags(as_is=True)).source == "flags"
    with pytest.raises(InputError, match="--as-is"):
        plan_feed(_sig(3, 6, 6), raw, flags=FeedFlags(as_is=True))
    with pytest.raises(InputError, match="do not fit"):
        plan_feed(_sig(5), raw)
