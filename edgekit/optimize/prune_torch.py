"""Magnitude and structured pruning of PyTorch models with `torch.nn.utils.prune`, with
fine-tuning on labelled data, written back as a `.pt2`.

torch's own pruning was chosen over torch-pruning (1.6.1 would install beside the rest
without changing a version, per ``pip install --dry-run``): it ships with torch (no new
dependency), and its masks need nothing from the module's Python code, which a `.pt2`
does not carry, whereas torch-pruning's dependency graph shrinks channels by tracing
an eager module. The weights are pruned once (``l1_unstructured`` per layer or
``global_unstructured`` across layers; ``ln_structured`` on conv/linear output
channels), the masks are folded in (``prune.remove``), and fine-tuning re-applies them
after every optimizer step so no pruned weight grows back. Structured pruning zeroes
whole output channels (their bias too) without shrinking tensors, as torch's does, so
no residual or concat bookkeeping is needed; the classifier's outputs are never pruned.

The fine-tuned weights go back into the source's ExportedProgram, so its graph and its
dynamic dimensions are kept as exported; the saved file is loaded again and must give
the fine-tuned module's outputs, or the pass fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import InputError, UnsupportedModelError, VerificationError
from edgekit.optimize.base import Pass, PassResult
from edgekit.optimize.prune_magnitude import FineTuneConfig

EPOCHS = 4
BATCH = 32
LR = 3e-4


def _weights(module: Any) -> list[tuple[str, Any, str]]:
    """(qualified name, owning module, attribute) of each conv/linear weight (2-D or more),
    in graph order."""
    out = []
    for name, p in module.named_parameters():
        if p.dim() >= 2:
            owner, _, attr = name.rpartition(".")
            out.append((name, module.get_submodule(owner), attr))
    return out


def prune_module(module: Any, sparsity: float, structured: bool, scope: str = "layer") -> dict:
    """Prune `module`'s weights in place with torch.nn.utils.prune; returns the masks
    (name -> bool tensor of kept entries, biases of zeroed channels included)."""
    import torch
    from torch.nn.utils import prune

    weights = _weights(module)
    if not weights:
        raise UnsupportedModelError("the model has no conv or linear weights to prune.")
    if structured:
        weights = weights[:-1]  # the classifier's outputs are the model's outputs
        for _, owner, attr in weights:
            prune.ln_structured(owner, attr, amount=sparsity, n=1, dim=0)
    elif scope == "global":
        prune.global_unstructured([(o, a) for _, o, a in weights],
                                  pruning_method=prune.L1Unstructured, amount=sparsity)  # fmt: skip
    else:
        for _, owner, attr in weights:
            prune.l1_unstructured(owner, attr, amount=sparsity)
    masks = {}
    params = dict(module.named_parameters())
    for name, owner, attr in weights:
        prune.remove(owner, attr)  # fold the mask into the weight: a plain parameter again
        kept = getattr(owner, attr).detach() != 0
        masks[name] = kept
        bias = name.rpartition(".")[0] + ".bias"
        if structured and bias in params and params[bias].shape[0] == kept.shape[0]:
            masks[bias] = kept.flatten(1).any(1)
            with torch.no_grad():
                params[bias].mul_(masks[bias])
    return masks


def _apply(module: Any, masks: dict) -> None:
    import torch

    params = dict(module.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].mul_(mask)


def fine_tune(module: Any, masks: dict, x: np.ndarray, y: np.ndarray, epochs: int) -> list[float]:
    """Train `module` on (x, y) with cross-entropy, masks re-applied after each step;
    returns the mean loss of each epoch. Softmax outputs are trained through their log."""
    import torch

    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=LR)
    gen = torch.Generator().manual_seed(0)
    xt, yt = torch.from_numpy(np.asarray(x, np.float32)), torch.from_numpy(np.asarray(y, np.int64))
    losses = []
    for _ in range(epochs):
        order, total = torch.randperm(len(xt), generator=gen), 0.0
        for i in range(0, len(xt), BATCH):
            idx = order[i : i + BATCH]
            out = module(xt[idx])
            out = out[0] if isinstance(out, tuple | list) else out
            probs = bool(((out >= 0) & (out <= 1)).all()) and torch.allclose(
                out.sum(-1), torch.ones(len(idx)), atol=1e-3)  # fmt: skip
            loss = (torch.nn.functional.nll_loss(torch.log(out.clamp_min(1e-8)), yt[idx]) if probs
                    else torch.nn.functional.cross_entropy(out, yt[idx]))  # fmt: skip
            opt.zero_grad()
            loss.backward()
            opt.step()
            _apply(module, masks)
            total += float(loss.detach()) * len(idx)
        losses.append(round(total / len(xt), 5))
    return losses


def sparsity_of(module: Any, masks: dict) -> dict[str, float]:
    """Fraction of exactly-zero entries of each pruned weight."""
    params = dict(module.named_parameters())
    return {n: round(float((params[n] == 0).float().mean()), 4) for n in masks if n in params}


def _write(ep: Any, module: Any, out: Path, probe: Any) -> None:
    """The fine-tuned weights into the ExportedProgram, saved at `out` and loaded back:
    VerificationError unless the file gives the module's outputs."""
    import torch

    from edgekit.formats.torch import program_module

    with torch.no_grad():
        for name, p in module.named_parameters():
            if name in ep.state_dict:
                ep.state_dict[name].copy_(p.detach())
        out.parent.mkdir(parents=True, exist_ok=True)
        torch.export.save(ep, str(out))
        want, got = module(probe), program_module(torch.export.load(str(out)))(probe)
    want = want[0] if isinstance(want, tuple | list) else want
    got = got[0] if isinstance(got, tuple | list) else got
    if not torch.allclose(want, got, atol=1e-5, rtol=1e-5):
        out.unlink(missing_ok=True)
        raise VerificationError(f"{out.name}: the saved pruned program does not reproduce the "
                                "fine-tuned model")  # fmt: skip


class TorchPrune(Pass):
    """Prune a PyTorch model (`.pt2`) and fine-tune it; the result is a `.pt2`."""

    structured = False
    Config = FineTuneConfig

    def _run(self, model: Any, config: FineTuneConfig, out: Path) -> PassResult:
        import copy

        import torch

        from edgekit.formats.torch import PT2, load_torch, program_module
        from edgekit.model import Model, load

        src = model if isinstance(model, Model) else load(model)
        loaded = load_torch(src)
        if loaded.kind != PT2:
            raise UnsupportedModelError(
                f"{src.path.name}: edgekit prunes .pt2 programs (torch.export.save), whose "
                "weights it can write back; export the model to a .pt2 first."
            )
        if not isinstance(config.sparsity, float | int):
            raise InputError("pruning a PyTorch model takes one sparsity for every layer.")
        if config.x is None or config.y is None:
            raise InputError("pruning a PyTorch model fine-tunes it, which needs labelled data; "
                             "pass --calib-data (e.g. digits, npz:FILE).")  # fmt: skip
        ep = copy.deepcopy(loaded.obj)  # the cached source stays as it was
        module = program_module(ep)
        masks = prune_module(module, float(config.sparsity), self.structured)
        epochs = EPOCHS if config.epochs is None else config.epochs
        losses = fine_tune(module, masks, config.x, config.y, epochs)
        probe = torch.from_numpy(np.asarray(config.x[:4], np.float32))
        _write(ep, module, out, probe)
        per_layer = sparsity_of(module, masks)
        total = sum(int(masks[n].numel()) for n in per_layer)
        zeros = sum(per_layer[n] * masks[n].numel() for n in per_layer)
        details = {"layer_sparsity": per_layer, "sparsity": round(zeros / total, 4),
                   "params_before": sum(int(p.numel()) for p in module.parameters()),
                   "params_after": sum(int(p.count_nonzero()) for p in module.parameters()),
                   "epochs": epochs, "loss": losses}  # fmt: skip
        return PassResult(out, "torch", "fp32", details)


class TorchMagnitudePrune(TorchPrune):
    """The ``prune_torch_magnitude`` pass: per-layer L1 unstructured pruning."""

    name = "prune_torch_magnitude"


class TorchStructuredPrune(TorchPrune):
    """The ``prune_torch_structured`` pass: L1 structured pruning of output channels."""

    name = "prune_torch_structured"
    structured = True
