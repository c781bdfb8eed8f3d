"""Model recipes: a named architecture plus the defaults that train it well on digits.

Each recipe declares how it wants its data laid out ("nhwc" images or "sequence"
steps) and builds a Keras model from an input shape and a number of classes. Only
built-in Keras layers and ops are used, so a saved ``model.keras`` loads anywhere
without edgekit being imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class Regularization:
    """Options every recipe honours: L1/L2 on kernels and dropout before the head."""

    l1: float = 0.0
    l2: float = 0.0
    dropout: float = 0.0

    def kernel(self) -> Any:
        """A kernel regularizer, or None when both penalties are zero."""
        import keras

        if self.l1 == 0.0 and self.l2 == 0.0:
            return None
        return keras.regularizers.L1L2(l1=self.l1, l2=self.l2)


@dataclass(frozen=True)
class Recipe:
    """A named model architecture and its default training hyperparameters."""

    name: str
    description: str
    layout: str  # how the data is fed: "nhwc" or "sequence"
    build: Callable[[tuple[int, ...], int, Regularization], keras.Model]
    epochs: int
    batch_size: int
    lr: float
    dropout: float = 0.0
    augment: bool = False


def build_cnn(input_shape: tuple[int, ...], num_classes: int, reg: Regularization) -> keras.Model:
    """The reference CNN: Conv32-Pool-Conv64-Pool-Flatten-Dense128-Dense(classes).

    Dropout layers are added only when ``reg.dropout`` > 0, so the default model is
    exactly the reference one.
    """
    import keras
    from keras import layers

    k = reg.kernel
    inp = keras.Input(input_shape, name="input")
    x = layers.Conv2D(32, 3, activation="relu", kernel_regularizer=k(), name="conv1")(inp)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, activation="relu", kernel_regularizer=k(), name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    if reg.dropout > 0:
        x = layers.Dropout(reg.dropout, name="dropout1")(x)
    x = layers.Dense(128, activation="relu", kernel_regularizer=k(), name="dense")(x)
    if reg.dropout > 0:
        x = layers.Dropout(reg.dropout, name="dropout2")(x)
    out = layers.Dense(num_classes, activation="softmax", kernel_regularizer=k(), name="probs")(x)
    return keras.Model(inp, out, name="cnn")


def build_lstm(input_shape: tuple[int, ...], num_classes: int, reg: Regularization) -> keras.Model:
    """An LSTM that reads ``[time, features]`` (an image row by row) and classifies."""
    import keras
    from keras import layers

    k = reg.kernel
    inp = keras.Input(input_shape, name="input")
    # Unrolled: a static graph that TFLite, ONNX and OpenVINO all convert without loops.
    x = layers.LSTM(64, kernel_regularizer=k(), unroll=True, name="lstm")(inp)
    if reg.dropout > 0:
        x = layers.Dropout(reg.dropout, name="dropout")(x)
    out = layers.Dense(num_classes, activation="softmax", kernel_regularizer=k(), name="probs")(x)
    return keras.Model(inp, out, name="lstm")


def build_transformer(
    input_shape: tuple[int, ...],
    num_classes: int,
    reg: Regularization,
    *,
    dim: int = 64,
    heads: int = 4,
    ff: int = 128,
    blocks: int = 2,
) -> keras.Model:
    """A small pre-norm transformer encoder over sequence steps (image rows).

    Steps are projected to ``dim``, a learned positional embedding is added, then
    ``blocks`` x (layer norm, multi-head self-attention, residual, layer norm,
    feed-forward, residual); the mean over steps feeds the classifier. The
    feed-forward uses ReLU rather than GELU: exact GELU lowers to Erf/Erfc, which
    tf2onnx cannot convert and integer runtimes handle poorly.
    """
    import keras
    from keras import layers, ops

    k = reg.kernel
    steps = input_shape[0]
    inp = keras.Input(input_shape, name="input")
    x = layers.Dense(dim, kernel_regularizer=k(), name="embed")(inp)
    # Positions 0..steps-1, derived from the input so the graph needs no custom layer.
    positions = ops.cumsum(ops.ones_like(inp[:, :, 0], dtype="int32"), axis=1) - 1
    x = x + layers.Embedding(steps, dim, name="position")(positions)
    for b in range(blocks):
        h = layers.LayerNormalization(epsilon=1e-6, name=f"ln{b}a")(x)
        h = layers.MultiHeadAttention(
            heads, dim // heads, kernel_regularizer=k(), name=f"attention{b}"
        )(h, h)
        x = x + h
        h = layers.LayerNormalization(epsilon=1e-6, name=f"ln{b}b")(x)
        h = layers.Dense(ff, activation="relu", kernel_regularizer=k(), name=f"ff{b}a")(h)
        h = layers.Dense(dim, kernel_regularizer=k(), name=f"ff{b}b")(h)
        x = x + h
    x = layers.LayerNormalization(epsilon=1e-6, name="ln_out")(x)
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    if reg.dropout > 0:
        x = layers.Dropout(reg.dropout, name="dropout")(x)
    out = layers.Dense(num_classes, activation="softmax", kernel_regularizer=k(), name="probs")(x)
    return keras.Model(inp, out, name="transformer")


# name -> Recipe; a new recipe is one builder plus one line here. The defaults reach
# >= 97% (cnn) and >= 94% (lstm, transformer) on digits in well under 60 s on 2 cores.
_ALL = (
    Recipe("cnn", "reference CNN on 28x28 images", "nhwc", build_cnn,
           epochs=20, batch_size=32, lr=1e-3, augment=True),
    Recipe("lstm", "LSTM reading an image row by row", "sequence", build_lstm,
           epochs=25, batch_size=32, lr=5e-3, augment=True),
    Recipe("transformer", "transformer encoder over image rows", "sequence", build_transformer,
           epochs=15, batch_size=32, lr=1e-3, augment=True),
)  # fmt: skip
RECIPES: dict[str, Recipe] = {r.name: r for r in _ALL}
