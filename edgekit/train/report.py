"""Scores and figures of a trained classifier (shared by train and evaluate).

matplotlib is imported inside each plot function with the Agg backend, so this
module is cheap to import and works without a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from edgekit.data import Dataset


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]
) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1/support and the confusion matrix."""
    n = len(class_names)
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (y_true, np.clip(y_pred, 0, n - 1)), 1)
    per_class = []
    for i, name in enumerate(class_names):
        tp = int(cm[i, i])
        predicted = int(cm[:, i].sum())
        support = int(cm[i, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append(
            {
                "class": name,
                "precision": round(precision, 6),
                "recall": round(recall, 6),
                "f1": round(f1, 6),
                "support": support,
            }
        )
    accuracy = float((y_true == y_pred).mean()) if len(y_true) else 0.0
    return {"accuracy": accuracy, "per_class": per_class, "confusion_matrix": cm.tolist()}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: dict, path: str | Path, title: str = "") -> None:
    """Loss and accuracy per epoch, train and validation, side by side."""
    plt = _pyplot()
    epochs = history["epoch"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", "accuracy"), strict=True):
        ax.plot(epochs, history[key], "o-", ms=3, label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], "o-", ms=3, label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_yscale("log")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(cm: list[list[int]], class_names: list[str], path: str | Path) -> None:
    """The confusion matrix with counts in each cell (rows: true, columns: predicted)."""
    plt = _pyplot()
    m = np.asarray(cm)
    n = len(class_names)
    size = max(4.0, 0.5 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=45 if n > 10 else 0)
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion ({int(np.trace(m))}/{int(m.sum())} correct)")
    if n <= 30:
        hi = m.max() / 2 if m.size else 0
        for i in range(n):
            for j in range(n):
                if m[i, j]:
                    color = "white" if m[i, j] > hi else ("red" if i != j else "black")
                    ax.text(j, i, str(m[i, j]), ha="center", va="center", color=color, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _as_picture(sample: np.ndarray, pre: Any) -> tuple[np.ndarray, str | None]:
    """A preprocessed sample back as a picture for display, and its colour map."""
    s = np.asarray(sample, dtype=np.float32)
    if pre.kind == "image":
        if pre.layout == "nchw":
            s = s.transpose(1, 2, 0)
        elif pre.layout == "sequence":
            s = s.reshape(s.shape[0], -1, pre.channels)
        # Undo the normalization so colours and contrast look as the raw image did.
        s = s * np.asarray(pre.std, np.float32) + np.asarray(pre.mean, np.float32)
        if s.shape[-1] == 3:
            if s.min() < -0.01 or s.max() > 1.01:  # not scaled to 0..1: stretch for display
                s = (s - s.min()) / max(float(s.max() - s.min()), 1e-6)
            return np.clip(s, 0, 1), None
        return s[:, :, 0], "gray_r"
    if s.ndim == 1:
        s = s[None, :]
    elif s.ndim > 2:
        s = s.reshape(s.shape[0], -1)
    return s, "viridis"


def plot_predictions(ds: Dataset, pred: np.ndarray, path: str | Path, count: int = 32) -> None:
    """A grid of test samples titled predicted/true; errors first, in red."""
    plt = _pyplot()
    y = ds.y_test
    wrong = np.flatnonzero(pred != y)
    right = np.flatnonzero(pred == y)
    picks = np.concatenate([wrong[: count // 2], right[: count - min(len(wrong), count // 2)]])
    picks = picks[:count]
    cols = 8
    rows = max(1, int(np.ceil(len(picks) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.5))
    axes = np.atleast_1d(axes).ravel()
    names = ds.class_names
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, picks, strict=False):
        ok = pred[i] == y[i]
        picture, cmap = _as_picture(ds.x_test[i], ds.preprocess)
        ax.imshow(picture, cmap=cmap)
        ax.set_title(
            f"{names[pred[i]]} / {names[y[i]]}",
            color="green" if ok else "red",
            fontsize=9,
            fontweight="normal" if ok else "bold",
        )
        if not ok:
            for side in ax.spines.values():
                side.set_visible(True)
                side.set_color("red")
                side.set_linewidth(2)
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(
        f"test samples: predicted / true ({len(wrong)} of {len(y)} wrong, shown first in red)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
