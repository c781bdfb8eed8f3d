"""Dataset sources (digits, npz:PATH, images:DIR), fixed-seed splits and batching."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.data.npz import read_npz
from edgekit.data.preprocess import Preprocess
from edgekit.errors import DatasetError

# The train/val/test split does not depend on the training seed, so every run of every
# recipe is scored on the same test samples.
SPLIT_SEED = 0
TEST_FRACTION = 0.2
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


@dataclass
class RawData:
    """Samples as read from a source, before splitting and preprocessing.

    ``x`` is an array with a leading sample axis, or a list of image arrays of
    varying size; ``kind`` is "image" when samples are pictures, "array" otherwise.
    """

    name: str
    x: np.ndarray | list[np.ndarray]
    y: np.ndarray
    class_names: list[str]
    kind: str
    value_max: float = 1.0
    channels: int = 1
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


@dataclass
class Dataset:
    """Preprocessed splits ready to feed a model, and the Preprocess that made them."""

    source: str
    preprocess: Preprocess
    class_names: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of the split ``train``, ``val`` or ``test``."""
        if name not in ("train", "val", "test"):
            raise DatasetError(f"Unknown split {name!r}; valid splits: train, val, test.")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def batches(self, split: str = "test", batch_size: int = 32) -> Iterator[np.ndarray]:
        """Feeds of one split in order, ``batch_size`` at a time (calibration, benchmarks)."""
        return iter_batches(self.split(split)[0], batch_size)


def iter_batches(
    x: np.ndarray, batch_size: int, y: np.ndarray | None = None
) -> Iterator[np.ndarray] | Iterator[tuple[np.ndarray, np.ndarray]]:
    """Consecutive batches of ``x`` (and ``y`` when given); the last one may be smaller."""
    if batch_size < 1:
        raise DatasetError(f"Batch size must be at least 1, not {batch_size}.")
    for start in range(0, len(x), batch_size):
        if y is None:
            yield x[start : start + batch_size]
        else:
            yield x[start : start + batch_size], y[start : start + batch_size]


# ---- sources ---------------------------------------------------------------------------


def _read_digits(arg: str) -> RawData:
    from edgekit.extras import require

    d = require("sklearn.datasets", "train").load_digits()
    return RawData(
        name="digits",
        x=d.images.astype(np.float32),
        y=d.target.astype(np.int64),
        class_names=[str(c) for c in d.target_names],
        kind="image",
        value_max=16.0,
    )


def _all_finite(x: np.ndarray, chunk_bytes: int = 16 << 20) -> bool:
    """np.isfinite(x).all() without a full-size temporary, and without paging in a mapping."""
    if isinstance(x, np.memmap) and x.flags.c_contiguous and x.filename:
        count = max(1, chunk_bytes // x.dtype.itemsize)
        with open(x.filename, "rb") as fh:
            fh.seek(x.offset)
            left = x.size
            while left:
                part = np.fromfile(fh, dtype=x.dtype, count=min(count, left))
                if not np.isfinite(part).all():
                    return False
                if len(part) == 0:  # the file is shorter than the array: check the mapping
                    return bool(np.isfinite(x).all())
                left -= len(part)
        return True
    rows = max(1, chunk_bytes // max(1, x[:1].nbytes))
    return all(np.isfinite(x[i : i + rows]).all() for i in range(0, len(x), rows))


def _check_x(x: np.ndarray, what: str, path: str) -> np.ndarray:
    if (
        x.dtype == object
        or not np.issubdtype(x.dtype, np.number)
        or np.issubdtype(x.dtype, np.complexfloating)
        or x.ndim < 2
    ):
        raise DatasetError(
            f"Array {what!r} in {path} must be real numbers with a sample axis, "
            f"got dtype {x.dtype} and shape {x.shape}."
        )
    if np.issubdtype(x.dtype, np.floating) and not _all_finite(x):
        raise DatasetError(f"Array {what!r} in {path} contains NaN or Inf values.")
    return x


def _check_y(y: np.ndarray, n: int, what: str, path: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DatasetError(
            f"Labels {what!r} in {path} must be one integer class per sample, got shape {y.shape}."
        )
    if len(y) != n:
        raise DatasetError(
            f"Dataset {path} has {n} samples in x but {len(y)} labels in {what!r}; "
            "they must be the same length."
        )
    return y


def _read_npz(arg: str) -> RawData:
    path = Path(arg)
    if not arg:
        raise DatasetError("Dataset source 'npz:' needs a path, as in npz:data.npz.")
    arrays = read_npz(path, error=DatasetError, noun="Dataset file")
    for key in ("x", "y"):
        if key not in arrays:
            have = ", ".join(sorted(arrays)) or "none"
            raise DatasetError(
                f"Dataset file {path} has no array {key!r} (arrays found: {have}); "
                "it needs 'x' and 'y'."
            )
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DatasetError(f"Dataset file {path} must have both 'x_test' and 'y_test', or neither.")
    x = _check_x(arrays["x"], "x", str(path))
    if len(x) == 0:
        raise DatasetError(f"Dataset file {path} has no samples in 'x'.")
    y = _check_y(arrays["y"], len(x), "y", str(path))
    x_test = y_test = None
    if "x_test" in arrays:
        x_test = _check_x(arrays["x_test"], "x_test", str(path))
        y_test = _check_y(arrays["y_test"], len(x_test), "y_test", str(path))
        if x_test.shape[1:] != x.shape[1:]:
            raise DatasetError(
                f"Dataset file {path} has x samples of shape {x.shape[1:]} but x_test "
                f"samples of shape {x_test.shape[1:]}."
            )
    all_y = y if y_test is None else np.concatenate([y, y_test])
    if not (np.issubdtype(all_y.dtype, np.integer) or np.all(np.mod(all_y, 1) == 0)):
        raise DatasetError(f"Labels in {path} must be integer class ids.")
    labels = np.unique(all_y)
    index = {v: i for i, v in enumerate(labels.tolist())}
    y = np.array([index[v] for v in y.tolist()], dtype=np.int64)
    if y_test is not None:
        y_test = np.array([index[v] for v in y_test.tolist()], dtype=np.int64)
    # Integer pixels are scaled to 0..1 (uint8 by 255); floats are taken as they are.
    value_max = 1.0
    if x.dtype == np.uint8:
        value_max = 255.0
    elif np.issubdtype(x.dtype, np.integer):
        value_max = float(np.abs(x).max())
    return RawData(
        name=f"npz:{arg}",
        x=x,
        y=y,
        class_names=[str(int(v)) if float(v).is_integer() else str(v) for v in labels],
        kind="array",
        value_max=value_max if value_max > 1.0 else 1.0,
        channels=int(x.shape[-1]) if x.ndim == 4 else 1,
        x_test=x_test,
        y_test=y_test,
    )


def _read_images(arg: str) -> RawData:
    from PIL import Image, UnidentifiedImageError

    root = Path(arg)
    if not arg:
        raise DatasetError("Dataset source 'images:' needs a folder, as in images:photos/.")
    if not root.is_dir():
        raise DatasetError(f"Image folder {root} does not exist or is not a folder.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DatasetError(
            f"Image folder {root} must hold one sub-folder per class, and at least two; "
            f"found {len(classes)}."
        )
    pics: list[tuple[Image.Image, int]] = []
    for label, name in enumerate(classes):
        files = sorted(
            p for p in (root / name).iterdir() if p.is_file() and not p.name.startswith(".")
        )
        if not files:
            raise DatasetError(f"Class folder {root / name} is empty; every class needs images.")
        for f in files:
            try:
                with Image.open(f) as im:
                    im.load()
                    pics.append((im.copy(), label))
            except (UnidentifiedImageError, OSError, SyntaxError) as exc:
                raise DatasetError(
                    f"File {f} is not a readable image ({type(exc).__name__}); "
                    "remove it or move it out of the class folders."
                ) from None
    color = any(im.mode not in _GRAY_MODES for im, _ in pics)
    mode = "RGB" if color else "L"
    xs = [np.asarray(im.convert(mode), dtype=np.uint8) for im, _ in pics]
    return RawData(
        name=f"images:{arg}",
        x=xs,
        y=np.array([lab for _, lab in pics], dtype=np.int64),
        class_names=classes,
        kind="image",
        value_max=255.0,
        channels=3 if color else 1,
    )


# name -> (reader, usage); a new source is one reader plus one line here.
SOURCES: dict[str, tuple[Callable[[str], RawData], str]] = {
    "digits": (_read_digits, "digits"),
    "npz": (_read_npz, "npz:PATH"),
    "images": (_read_images, "images:DIR"),
}


def read_source(spec: str) -> RawData:
    """Read a dataset source string (``digits``, ``npz:PATH``, ``images:DIR``)."""
    name, sep, arg = str(spec).partition(":")
    if name not in SOURCES:
        p = Path(str(spec))
        if p.suffix == ".npz" and p.is_file():
            name, arg = "npz", str(p)
        elif p.is_dir():
            name, arg = "images", str(p)
        else:
            valid = ", ".join(usage for _, usage in SOURCES.values())
            raise DatasetError(f"Unknown dataset source {spec!r}; valid sources: {valid}.")
    elif name == "digits" and sep:
        raise DatasetError("Dataset source 'digits' takes no argument.")
    reader, _ = SOURCES[name]
    return reader(arg)


def _split(n: int, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out), stratified by label when every class has two samples."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    if fraction <= 0:
        return idx, idx[:0]
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    n_held = max(1, int(round(n * fraction)))
    if stratify is not None and n_held < len(counts[counts > 0]):
        stratify = None
    keep, held = train_test_split(idx, test_size=n_held, random_state=seed, stratify=stratify)
    return np.sort(keep), np.sort(held)


def _take(x: np.ndarray | list, idx: np.ndarray) -> np.ndarray | list:
    if isinstance(x, np.memmap) and x.filename and x.flags.c_contiguous and len(idx):
        return _take_from_file(x, np.asarray(idx))
    return x[idx] if isinstance(x, np.ndarray) else [x[i] for i in idx]


def _take_from_file(x: np.memmap, idx: np.ndarray, chunk_bytes: int = 16 << 20) -> np.ndarray:
    """``x[idx]`` for a memory-mapped array, read with file reads one chunk at a time.

    Indexing the mapping itself would page in (and count in RSS) nearly the whole file,
    since the kernel maps neighbouring pages on each fault; this holds one chunk at most.
    """
    row = x.dtype.itemsize * int(np.prod(x.shape[1:]))
    out = np.empty((len(idx), *x.shape[1:]), dtype=x.dtype)
    order = np.argsort(idx, kind="stable")
    wanted = idx[order]
    rows_per_chunk = max(1, chunk_bytes // max(row, 1))
    with open(x.filename, "rb") as fh:
        for start in range(0, len(x), rows_per_chunk):
            lo, hi = np.searchsorted(wanted, [start, start + rows_per_chunk])
            if lo == hi:
                continue
            n = min(rows_per_chunk, len(x) - start)
            fh.seek(x.offset + start * row)
            block = np.fromfile(fh, dtype=x.dtype, count=n * row // x.dtype.itemsize)
            out[order[lo:hi]] = block.reshape(n, *x.shape[1:])[wanted[lo:hi] - start]
    return out


def _fit_preprocess(
    raw: RawData,
    x_train: np.ndarray | list,
    layout: str,
    image_size: tuple[int, int],
    channels: int | None,
    normalize: bool,
) -> Preprocess:
    """Choose and fit the preprocessing for this source and target layout."""
    sample_ndim = np.asarray(x_train[0]).ndim
    image = raw.kind == "image" or (
        (layout in ("nhwc", "nchw") and sample_ndim == 2) or sample_ndim == 3
    )
    if layout in ("nhwc", "nchw") and not image:
        raise DatasetError(
            f"Dataset {raw.name} has samples of shape {np.asarray(x_train[0]).shape}; "
            "this recipe needs images (H, W) or (H, W, C)."
        )
    if not image:
        pre = Preprocess(
            "array",
            "array" if layout == "nhwc" else layout,
            tuple(np.asarray(x_train[0]).shape),
            scale=1.0 / raw.value_max,
            source=raw.name,
            class_names=raw.class_names,
        )
        if layout == "sequence":
            pre.layout = "array"
        x1 = np.asarray(x_train, dtype=np.float32) * np.float32(pre.scale)
        axes = tuple(range(x1.ndim - 1))
    else:
        ch = channels or raw.channels
        if raw.kind != "image" and sample_ndim == 3:
            ch = channels or int(np.asarray(x_train[0]).shape[-1])
        h, w = image_size
        shape = {"nhwc": (h, w, ch), "nchw": (ch, h, w), "sequence": (h, w * ch)}[layout]
        pre = Preprocess(
            "image",
            layout,
            shape,
            resize=(h, w),
            channels=ch,
            scale=1.0 / raw.value_max,
            source=raw.name,
            class_names=raw.class_names,
        )
        x1 = pre.images(x_train)
        axes = (0, 1, 2)
    if normalize:
        # One statistic per image channel, or per last-axis feature for arrays.
        mean = x1.mean(axis=axes, dtype=np.float64)
        std = x1.std(axis=axes, dtype=np.float64)
        pre.mean = np.ravel(mean).tolist()
        pre.std = np.where(np.ravel(std) < 1e-6, 1.0, np.ravel(std)).tolist()
    return pre


def load_dataset(
    spec: str | RawData,
    preprocess: Preprocess | None = None,
    *,
    layout: str = "nhwc",
    image_size: tuple[int, int] = (28, 28),
    channels: int | None = None,
    val_split: float = 0.15,
    test_split: float = TEST_FRACTION,
    normalize: bool = True,
    max_train: int | None = None,
    splits: tuple[str, ...] = ("train", "val", "test"),
    sample_train: int | None = None,
) -> Dataset:
    """Read a source, split it with a fixed seed and preprocess every split in ``splits``.

    With ``preprocess`` given (evaluation, calibration), samples are fed exactly as
    it says. Otherwise one is fitted on the training split for ``layout``
    ("nhwc", "nchw" or "sequence"), resizing images to ``image_size``; per-channel
    mean and standard deviation are applied when ``normalize``. The test split is
    ``x_test``/``y_test`` when the source has them, else ``test_split`` of the data;
    ``val_split`` is the fraction of the remaining data held out for validation.
    ``max_train`` keeps only the first that many training samples (quick runs).
    Splits not in ``splits`` are left empty (``info`` still counts them), so that
    evaluating the test split of a large npz, which is memory-mapped, reads only that.
    ``sample_train`` keeps a seeded random sample of that many training samples (and fits
    the preprocessing, when not given, on them), so that calibration (a few hundred
    samples) reads only those.
    """
    if not 0.0 <= val_split < 1.0:
        raise DatasetError(f"Validation split must be in [0, 1), not {val_split}.")
    if not 0.0 < test_split < 1.0:
        raise DatasetError(f"Test split must be in (0, 1), not {test_split}.")
    raw = spec if isinstance(spec, RawData) else read_source(spec)
    y = raw.y
    n = len(y)
    if raw.x_test is not None:
        rest, x_test, y_test = np.arange(n), raw.x_test, raw.y_test
    else:
        if n < 3:
            raise DatasetError(f"Dataset {raw.name} has {n} samples; it needs at least 3.")
        rest, test_idx = _split(n, y, test_split, SPLIT_SEED)
        x_test, y_test = _take(raw.x, test_idx), y[test_idx]
    keep, val_idx = _split(len(rest), y[rest], val_split, SPLIT_SEED)
    train_idx, val_idx = rest[keep], rest[val_idx]
    if max_train is not None:
        train_idx = train_idx[:max_train]
    if len(train_idx) == 0:
        raise DatasetError(f"Dataset {raw.name} leaves no samples for training.")
    info = {"train": len(train_idx), "val": len(val_idx), "test": len(y_test)}
    if sample_train is not None and len(train_idx) > sample_train:
        pick = np.random.default_rng(SPLIT_SEED).choice(len(train_idx), sample_train, replace=False)
        train_idx = train_idx[np.sort(pick)]
    if preprocess is None:
        x_fit = _take(raw.x, train_idx)
        preprocess = _fit_preprocess(raw, x_fit, layout, image_size, channels, normalize)
        del x_fit
    pre = preprocess
    train_idx, val_idx = (
        idx if name in splits else idx[:0] for name, idx in (("train", train_idx), ("val", val_idx))
    )
    if "test" not in splits:
        x_test, y_test = _take(x_test, np.arange(0)), np.asarray(y_test)[:0]
    ds = Dataset(
        source=raw.name,
        preprocess=pre,
        class_names=list(pre.class_names) or list(raw.class_names),
        x_train=pre.apply(_take(raw.x, train_idx)),
        y_train=np.asarray(y[train_idx], dtype=np.int64),
        x_val=pre.apply(_take(raw.x, val_idx)),
        y_val=np.asarray(y[val_idx], dtype=np.int64),
        x_test=pre.apply(x_test),
        y_test=np.asarray(y_test, dtype=np.int64),
        info=info,
    )
    top = int(np.max(y)) if raw.y_test is None else int(max(np.max(y), np.max(raw.y_test)))
    if len(ds.class_names) < top + 1:
        ds.class_names = [str(i) for i in range(top + 1)]
    return ds
