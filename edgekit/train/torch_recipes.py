"""The recipes of `edgekit.train.recipes` as PyTorch modules, for `train --framework torch`.

Each builder mirrors its Keras twin layer for layer and keeps its conventions, so
that the rest of the pipeline feeds both the same data: images come in as NHWC
(``[batch, 28, 28, 1]``, permuted to NCHW inside the model) and sequences as
``[batch, steps, features]``; the input is called ``input`` and the output holds
class probabilities (softmax). Training uses ``logits``, which is the same graph
without the softmax, for a numerically stable cross-entropy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edgekit.train.recipes import Regularization

if TYPE_CHECKING:
    import torch


def _modules() -> Any:
    """The classes, defined on first use so that importing this module loads no torch."""
    import torch
    from torch import nn

    class Classifier(nn.Module):
        """A body that yields logits; ``forward`` turns them into probabilities."""

        def logits(self, x: torch.Tensor) -> torch.Tensor:
            raise NotImplementedError

        def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002  (the Keras name)
            return torch.softmax(self.logits(input), dim=-1)

    def dropout(rate: float) -> nn.Module:
        # Absent, not Dropout(0), when off: the default model is exactly the reference one.
        return nn.Dropout(rate) if rate > 0 else nn.Identity()

    class CNN(Classifier):
        """Conv32-Pool-Conv64-Pool-Flatten-Dense128-Dense(classes), as `recipes.build_cnn`."""

        def __init__(self, input_shape: tuple[int, ...], num_classes: int, reg: Regularization):
            super().__init__()
            h, w, c = input_shape
            self.conv1 = nn.Conv2d(c, 32, 3)
            self.conv2 = nn.Conv2d(32, 64, 3)
            flat = 64 * (((h - 2) // 2 - 2) // 2) * (((w - 2) // 2 - 2) // 2)
            self.dropout1 = dropout(reg.dropout)
            self.dense = nn.Linear(flat, 128)
            self.dropout2 = dropout(reg.dropout)
            self.probs = nn.Linear(128, num_classes)

        def logits(self, x: torch.Tensor) -> torch.Tensor:
            x = x.permute(0, 3, 1, 2)  # NHWC in, as the Keras recipe takes it
            x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
            x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
            x = self.dropout1(torch.flatten(x, 1))
            return self.probs(self.dropout2(torch.relu(self.dense(x))))

    class LSTM(Classifier):
        """An LSTM over ``[steps, features]``, unrolled step by step as the Keras recipe is,
        so that the exported graph holds no loop and every converter takes it."""

        def __init__(self, input_shape: tuple[int, ...], num_classes: int, reg: Regularization):
            super().__init__()
            self.steps = input_shape[0]
            self.lstm = nn.LSTMCell(input_shape[1], 64)
            self.dropout = dropout(reg.dropout)
            self.probs = nn.Linear(64, num_classes)

        def logits(self, x: torch.Tensor) -> torch.Tensor:
            h = x.new_zeros(x.shape[0], self.lstm.hidden_size)
            c = h
            for t in range(self.steps):
                h, c = self.lstm(x[:, t], (h, c))
            return self.probs(self.dropout(h))

    class Block(nn.Module):
        """Pre-norm: x + MHA(LN(x)), then x + FF(LN(x)) with ReLU (as the Keras recipe)."""

        def __init__(self, dim: int, heads: int, ff: int) -> None:
            super().__init__()
            self.ln_a = nn.LayerNorm(dim, eps=1e-6)
            self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
            self.ln_b = nn.LayerNorm(dim, eps=1e-6)
            self.ff = nn.Sequential(nn.Linear(dim, ff), nn.ReLU(), nn.Linear(ff, dim))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.ln_a(x)
            x = x + self.attention(h, h, h, need_weights=False)[0]
            return x + self.ff(self.ln_b(x))

    class Transformer(Classifier):
        """A small pre-norm encoder over sequence steps, as `recipes.build_transformer`."""

        def __init__(
            self,
            input_shape: tuple[int, ...],
            num_classes: int,
            reg: Regularization,
            dim: int = 64,
            heads: int = 4,
            ff: int = 128,
            blocks: int = 2,
        ):
            super().__init__()
            steps, features = input_shape
            self.embed = nn.Linear(features, dim)
            # A learned embedding per position (Keras: Embedding(steps) of 0..steps-1).
            self.position = nn.Parameter(torch.empty(steps, dim).uniform_(-0.05, 0.05))
            self.blocks = nn.ModuleList(Block(dim, heads, ff) for _ in range(blocks))
            self.ln_out = nn.LayerNorm(dim, eps=1e-6)
            self.dropout = dropout(reg.dropout)
            self.probs = nn.Linear(dim, num_classes)

        def logits(self, x: torch.Tensor) -> torch.Tensor:
            x = self.embed(x) + self.position
            for block in self.blocks:
                x = block(x)
            x = self.ln_out(x).mean(dim=1)
            return self.probs(self.dropout(x))

    return {"cnn": CNN, "lstm": LSTM, "transformer": Transformer}


_CLASSES: dict[str, Any] = {}


def builder(recipe: str) -> Callable[[tuple[int, ...], int, Regularization], Any]:
    """The nn.Module class that mirrors Keras recipe ``recipe`` (called with the same arguments)."""
    if not _CLASSES:
        _CLASSES.update(_modules())
    return _CLASSES[recipe]


def penalty(module: Any, reg: Regularization) -> Any:
    """L1/L2 on every kernel (weights of 2 or more dims), as Keras' kernel regularizers add;
    biases, norms and the position table are not penalized. Zero when both are off."""
    if reg.l1 == 0.0 and reg.l2 == 0.0:
        return 0.0
    total = 0.0
    for name, p in module.named_parameters():
        if p.dim() >= 2 and name != "position":
            total = total + reg.l1 * p.abs().sum() + reg.l2 * p.square().sum()
    return total
