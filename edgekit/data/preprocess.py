"""Preprocessing as data: the exact recipe that turns raw samples into model feeds."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from edgekit.errors import DatasetError, InputError

SCHEMA_VERSION = 1

# How a preprocessed sample is laid out for the model (the batch axis comes first):
# nhwc/nchw: images; sequence: image rows are time steps (H, W*C); array: as stored.
LAYOUTS = ("nhwc", "nchw", "sequence", "array")


@dataclass
class Preprocess:
    """How raw samples become model feeds: convert, resize, scale, normalize, lay out.

    Raw image samples are arrays ``(H, W)`` or ``(H, W, C)`` of pixel values; raw
    array samples (``kind="array"``) are any shape and are only scaled and normalized.
    ``apply`` runs, in order: channel conversion, bilinear resize to ``resize``,
    ``x * scale``, ``(x - mean) / std`` (per channel, or per last-axis feature for
    arrays), then the ``layout`` transform, giving float32 samples of ``input_shape``.
    """

    kind: str  # "image" or "array"
    layout: str  # one of LAYOUTS
    input_shape: tuple[int, ...]  # one preprocessed sample, without the batch axis
    resize: tuple[int, int] | None = None  # (height, width) for images
    channels: int | None = None  # 1 or 3 for images
    scale: float = 1.0
    mean: list[float] = field(default_factory=lambda: [0.0])
    std: list[float] = field(default_factory=lambda: [1.0])
    dtype: str = "float32"
    class_names: list[str] = field(default_factory=list)
    source: str = ""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.kind not in ("image", "array"):
            raise InputError(f"Preprocess kind must be 'image' or 'array', not {self.kind!r}.")
        if self.layout not in LAYOUTS:
            raise InputError(
                f"Preprocess layout must be one of {', '.join(LAYOUTS)}, not {self.layout!r}."
            )
        self.input_shape = tuple(int(d) for d in self.input_shape)
        if self.resize is not None:
            self.resize = (int(self.resize[0]), int(self.resize[1]))
        self.mean = [float(m) for m in np.ravel(self.mean)]
        self.std = [float(s) for s in np.ravel(self.std)]

    # ---- persistence -------------------------------------------------------------------

    def to_dict(self) -> dict:
        """A JSON-ready dict (tuples become lists)."""
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["resize"] = list(self.resize) if self.resize is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Preprocess:
        """Build from ``to_dict`` output; unknown keys are ignored, missing ones are errors."""
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        if d.get("schema_version", SCHEMA_VERSION) > SCHEMA_VERSION:
            raise InputError(
                f"preprocess schema_version {d['schema_version']} is newer than this "
                f"edgekit understands ({SCHEMA_VERSION}); upgrade edgekit."
            )
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise InputError(f"preprocess data is incomplete: {exc}.") from None

    def save(self, path: str | os.PathLike) -> Path:
        """Write as JSON atomically (temp file, then rename); returns the path."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(self.to_dict(), f, indent=2)
            f.write("\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it normal file rights
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Preprocess:
        """Read a ``preprocess.json``."""
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise InputError(f"Preprocess file {path} does not exist.") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"Preprocess file {path} is not valid JSON ({exc}).") from None
        if not isinstance(d, dict):
            raise InputError(f"Preprocess file {path} does not hold a JSON object.")
        return cls.from_dict(d)

    @classmethod
    def find_for(cls, model_path: str | os.PathLike) -> Preprocess | None:
        """The ``preprocess.json`` beside (or, for a model folder, inside) a model, if any."""
        p = Path(model_path)
        candidates = [p / "preprocess.json"] if p.is_dir() else []
        candidates.append(p.parent / "preprocess.json")
        for c in candidates:
            if c.is_file():
                return cls.load(c)
        return None

    @classmethod
    def guess(cls, input_shape: Sequence[int | None]) -> Preprocess:
        """A plain preprocess for a model input shape (batch axis included), when none
        was saved: images scaled from 0..255 to 0..1, arrays passed through."""
        dims = [d for d in list(input_shape)[1:]]
        if any(d is None or (isinstance(d, int) and d <= 0) for d in dims):
            raise InputError(
                f"Cannot guess preprocessing for the dynamic input shape {tuple(input_shape)}; "
                "pass a preprocess.json."
            )
        dims = [int(d) for d in dims]
        if len(dims) == 3 and dims[-1] in (1, 3):
            return cls("image", "nhwc", tuple(dims), (dims[0], dims[1]), dims[-1], 1 / 255)
        if len(dims) == 3 and dims[0] in (1, 3):
            return cls("image", "nchw", tuple(dims), (dims[1], dims[2]), dims[0], 1 / 255)
        return cls("array", "array", tuple(dims))

    # ---- application -------------------------------------------------------------------

    def images(self, raw: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Stage one for images: channels, resize and scale; returns ``(N, H, W, C)``."""
        out = np.empty((len(raw), *self.resize, self.channels), dtype=np.float32)
        for i, sample in enumerate(raw):
            out[i] = _resize(_to_channels(np.asarray(sample), self.channels), self.resize)
        out *= np.float32(self.scale)
        return out

    def apply(self, raw: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Preprocess a batch (an array with a leading batch axis, or a list of samples)."""
        if len(raw) == 0:
            return np.zeros((0, *self.input_shape), dtype=self.dtype)
        if self.kind == "image":
            x = self.images(raw)
        else:
            x = np.asarray(raw, dtype=np.float32) * np.float32(self.scale)
        return self.finish(x)

    def apply_one(self, sample: np.ndarray) -> np.ndarray:
        """Preprocess one sample; returns it with a batch axis of 1."""
        return self.apply([sample])

    def finish(self, x: np.ndarray) -> np.ndarray:
        """Stage two: normalize and lay out a stage-one batch."""
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        x = x - mean
        x /= std  # in place: one copy of the batch, not two
        n = x.shape[0]
        if self.layout == "nchw":
            x = x.transpose(0, 3, 1, 2)
        elif self.layout == "sequence" and self.kind == "image":
            x = x.reshape(n, x.shape[1], -1)
        if tuple(x.shape[1:]) != self.input_shape:
            if int(np.prod(x.shape[1:])) != int(np.prod(self.input_shape)):
                raise InputError(
                    f"Samples of shape {tuple(x.shape[1:])} do not fit the model input "
                    f"{self.input_shape}."
                )
            x = x.reshape(n, *self.input_shape)
        return np.ascontiguousarray(x, dtype=self.dtype)


def _to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """An image sample as float32 ``(H, W, channels)``."""
    img = np.asarray(img, dtype=np.float32)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3:
        raise DatasetError(f"An image sample has shape {img.shape}; expected (H, W) or (H, W, C).")
    c = img.shape[2]
    if c == channels:
        return img
    if c == 4:
        img, c = img[:, :, :3], 3
    if c == 3 and channels == 1:
        return (img @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[:, :, None]
    if c == 1 and channels == 3:
        return np.repeat(img, 3, axis=2)
    if c == channels:
        return img
    raise DatasetError(f"Cannot convert an image with {c} channels to {channels}.")


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float32 ``(H, W, C)`` image, channel by channel (PIL)."""
    if img.shape[:2] == tuple(size):
        return img
    from PIL import Image

    h, w = size
    chans = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(img[:, :, k])).resize(
                (w, h), Image.Resampling.BILINEAR
            )
        )
        for k in range(img.shape[2])
    ]
    return np.stack(chans, axis=2)
