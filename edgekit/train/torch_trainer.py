"""Fit a PyTorch recipe (`edgekit.train.torch_recipes`) and export it as a `.pt2`.

The loop does what Keras' `fit` does for the Keras recipes: Adam, cross-entropy
plus the kernels' L1/L2, shuffled batches, the same learning-rate schedules,
early stopping that restores the best weights, and the same random shifts and
rotations of images. The model is saved with `torch.export.save`, its batch
dimension dynamic, and the test split is scored with that exported program, so
that `edgekit eval` of the file finds what `train` reported.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.train.base import EpochProgress, Fitted, TrainOptions, cosine_lr
from edgekit.train.recipes import Recipe, Regularization

if TYPE_CHECKING:
    from edgekit.data import Dataset

# Keras' Adam epsilon (torch's default is 1e-8), so both recipes take the same steps.
ADAM_EPS = 1e-7


def _seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch and make torch's kernels deterministic."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One intra-op thread while training: the same sums in the same order on any machine,
    and on a shared CPU the small batches ran 10x slower on two threads than on one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _augment(x: Any, layout: str) -> Any:
    """Random shifts (up to 10% each way) and rotations (±10°) per sample, edges repeated
    (Keras' fill_mode="nearest"); sequences are treated as one-channel images."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    img = {"nhwc": lambda t: t.permute(0, 3, 1, 2), "sequence": lambda t: t.unsqueeze(1)}
    back = {"nhwc": lambda t: t.permute(0, 2, 3, 1), "sequence": lambda t: t.squeeze(1)}
    y = img.get(layout, lambda t: t)(x)
    n = y.shape[0]
    angle = (torch.rand(n) * 2 - 1) * math.radians(10)
    shift = (torch.rand(n, 2) * 2 - 1) * 0.2  # 10% of the size; the grid spans [-1, 1]
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(y.shape), align_corners=False)
    y = F.grid_sample(y, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return back.get(layout, lambda t: t)(y).contiguous()


def _scores(module: Any, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Probabilities, mean cross-entropy and accuracy of ``module`` (a forward giving probs)."""
    import torch

    with torch.no_grad():
        probs = np.concatenate(
            [
                module(torch.from_numpy(np.ascontiguousarray(x[i : i + 256], np.float32))).numpy()
                for i in range(0, len(x), 256)
            ]
        )
    p_true = probs[np.arange(len(y)), y].astype(np.float64)
    return (
        probs,
        float(-np.log(np.clip(p_true, 1e-7, 1.0)).mean()),
        float((probs.argmax(1) == y).mean()),
    )


def export_program(model: Any, example: np.ndarray) -> Any:
    """`torch.export` of ``model`` in eval mode with a dynamic batch dimension."""
    import torch

    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    return torch.export.export(
        model.eval(),
        (torch.from_numpy(np.ascontiguousarray(example, np.float32)),),
        dynamic_shapes={"input": {0: batch}},
    )


def fit(recipe: Recipe, opts: TrainOptions, ds: Dataset, progress: bool) -> Fitted:
    """Train ``recipe`` with PyTorch on ``ds`` as ``opts`` say."""
    with _one_thread():
        return _fit(recipe, opts, ds, progress)


def _fit(recipe: Recipe, opts: TrainOptions, ds: Dataset, progress: bool) -> Fitted:
    import torch
    import torch.nn.functional as F  # noqa: N812

    from edgekit.train.torch_recipes import builder, penalty

    _seed_everything(opts.seed)
    reg = Regularization(opts.l1, opts.l2, opts.dropout)
    model = builder(recipe.name)(tuple(ds.x_train.shape[1:]), ds.num_classes, reg)
    optimizer = torch.optim.Adam(model.parameters(), lr=opts.lr, eps=ADAM_EPS)
    plateau = None
    if opts.lr_schedule == "plateau":
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=2, min_lr=opts.lr / 100
        )
    x_train = torch.from_numpy(np.ascontiguousarray(ds.x_train, dtype=np.float32))
    y_train = torch.from_numpy(np.asarray(ds.y_train, dtype=np.int64))
    n, has_val = len(y_train), len(ds.y_val) > 0
    steps = math.ceil(n / opts.batch_size)
    bar = EpochProgress(opts.epochs, steps) if progress else None
    columns: dict[str, list[float]] = {"loss": [], "accuracy": [], "lr": []}
    if has_val:
        columns.update(val_loss=[], val_accuracy=[])
    best: tuple[float, dict] | None = None
    since_best, stopped = 0, False

    t_fit = time.perf_counter()
    if bar:
        bar.start()
    try:
        for epoch in range(opts.epochs):
            if opts.lr_schedule == "cosine":
                for group in optimizer.param_groups:
                    group["lr"] = cosine_lr(opts, epoch)
            columns["lr"].append(float(optimizer.param_groups[0]["lr"]))
            if bar:
                bar.epoch_begin(epoch)
            model.train()
            order = torch.randperm(n)
            loss_sum = correct = 0.0
            for step in range(steps):
                idx = order[step * opts.batch_size : (step + 1) * opts.batch_size]
                xb, yb = x_train[idx], y_train[idx]
                if opts.augment:
                    xb = _augment(xb, ds.preprocess.layout)
                logits = model.logits(xb)
                loss = F.cross_entropy(logits, yb) + penalty(model, reg)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                loss_sum += float(loss.detach()) * len(idx)
                correct += float((logits.argmax(1) == yb).sum())
                seen = min(n, (step + 1) * opts.batch_size)
                if bar:
                    bar.batch_end(step, {"loss": loss_sum / seen, "accuracy": correct / seen})
            logs = {"loss": loss_sum / n, "accuracy": correct / n}
            if has_val:
                model.eval()
                _, logs["val_loss"], logs["val_accuracy"] = _scores(model, ds.x_val, ds.y_val)
            for key, value in logs.items():
                columns[key].append(value)
            if bar:
                bar.epoch_end(logs)
            if plateau is not None:
                plateau.step(logs["val_loss"])
            if opts.patience > 0 and has_val:
                if best is None or logs["val_loss"] < best[0]:
                    best, since_best = (logs["val_loss"], copy.deepcopy(model.state_dict())), 0
                else:
                    since_best += 1
                    if since_best >= opts.patience:
                        stopped = True
                        break
    finally:
        if bar:
            bar.stop()
    train_time = time.perf_counter() - t_fit
    if best is not None:
        model.load_state_dict(best[1])  # as Keras' restore_best_weights

    program = export_program(model, ds.x_train[:2])
    probs, _, _ = _scores(program.module(), ds.x_test, ds.y_test)
    return Fitted(
        test_probs=probs,
        columns=columns,
        stopped_early=stopped,
        parameters=int(sum(p.numel() for p in model.parameters())),
        train_time_s=train_time,
        save=lambda path: torch.export.save(program, str(path)),
        versions={"torch": torch.__version__},
    )
