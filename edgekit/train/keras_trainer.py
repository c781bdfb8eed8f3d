"""Fit a Keras recipe (`edgekit.train.recipes`); the folder is written by `base.finish`."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.train.base import EpochProgress, Fitted, TrainOptions, cosine_lr
from edgekit.train.recipes import Recipe, Regularization

if TYPE_CHECKING:
    from edgekit.data import Dataset


def _seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TF ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _augmenter(input_shape: tuple[int, ...], layout: str) -> Any:
    """Random small shifts (10%) and rotations (±10°) of images, active only in training."""
    import keras
    from keras import layers

    inp = keras.Input(input_shape)
    x = inp
    if layout == "sequence":
        x = layers.Reshape((input_shape[0], -1, 1))(x)
    elif layout == "nchw":
        x = layers.Permute((2, 3, 1))(x)
    x = layers.RandomTranslation(0.1, 0.1, fill_mode="nearest")(x)
    x = layers.RandomRotation(10 / 360, fill_mode="nearest")(x)
    if layout == "sequence":
        x = layers.Reshape(input_shape)(x)
    elif layout == "nchw":
        x = layers.Permute((3, 1, 2))(x)
    return keras.Model(inp, x, name="augment")


def _lr_callback(opts: TrainOptions) -> Any:
    import keras

    if opts.lr_schedule == "plateau":
        return keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=2, min_lr=opts.lr / 100
        )
    if opts.lr_schedule == "cosine":
        return keras.callbacks.LearningRateScheduler(lambda epoch, _lr=0.0: cosine_lr(opts, epoch))
    return None


def _progress_callback(epochs: int, steps: int) -> Any:
    """`base.EpochProgress` driven by Keras' callback hooks."""
    import keras

    class RichProgress(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            self.bar = EpochProgress(epochs, steps)
            self.bar.start()

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.bar.epoch_begin(epoch)

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.bar.batch_end(batch, logs or {})

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.bar.epoch_end(logs or {})

        def on_train_end(self, logs: dict | None = None) -> None:
            self.bar.stop()

    return RichProgress()


def fit(recipe: Recipe, opts: TrainOptions, ds: Dataset, progress: bool) -> Fitted:
    """Train ``recipe`` with Keras on ``ds`` as ``opts`` say."""
    import keras
    import tensorflow as tf

    _seed_everything(opts.seed)
    model = recipe.build(
        ds.x_train.shape[1:], ds.num_classes, Regularization(opts.l1, opts.l2, opts.dropout)
    )
    fit_model = model
    if opts.augment:
        aug = _augmenter(ds.x_train.shape[1:], ds.preprocess.layout)
        inp = keras.Input(ds.x_train.shape[1:])
        fit_model = keras.Model(inp, model(aug(inp)), name=f"{model.name}_augmented")
    fit_model.compile(
        optimizer=keras.optimizers.Adam(opts.lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    has_val = len(ds.y_val) > 0
    callbacks = [cb for cb in [_lr_callback(opts)] if cb is not None]
    early = None
    if opts.patience > 0:
        early = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=opts.patience, restore_best_weights=True
        )
        callbacks.append(early)
    if progress:
        callbacks.append(
            _progress_callback(opts.epochs, math.ceil(len(ds.y_train) / opts.batch_size))
        )

    t_fit = time.perf_counter()
    result = fit_model.fit(
        ds.x_train,
        ds.y_train,
        batch_size=opts.batch_size,
        epochs=opts.epochs,
        validation_data=(ds.x_val, ds.y_val) if has_val else None,
        shuffle=True,
        callbacks=callbacks,
        verbose=0,
    )
    train_time = time.perf_counter() - t_fit
    probs = model.predict(ds.x_test, batch_size=256, verbose=0)
    return Fitted(
        test_probs=np.asarray(probs),
        columns=result.history,
        stopped_early=bool(early is not None and early.stopped_epoch > 0),
        parameters=int(model.count_params()),
        train_time_s=train_time,
        save=lambda path: model.save(path),
        versions={"tensorflow": tf.__version__, "keras": keras.__version__},
    )
