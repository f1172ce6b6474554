"""Two training mechanisms seen in a trained network (lecture 002): batch normalisation of a
real batch, and dropout as an ensemble of thinned networks."""

from __future__ import annotations

import copy

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from deepsky.data.tensors import asinh_stretch
from deepsky.figures.style import save_figure


def _first(model: nn.Module, kind) -> nn.Module:
    for module in model.modules():
        if isinstance(module, kind):
            return module
    raise ValueError(f"the model has no {kind.__name__} layer")


@torch.no_grad()
def batchnorm_activations(model: nn.Module, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(input, output) of the first BatchNorm2d on batch x, normalised with the batch's own
    statistics as in training; the model itself is left untouched."""
    model = copy.deepcopy(model).train()
    bn = _first(model, nn.BatchNorm2d)
    seen = {}
    bn.register_forward_hook(lambda m, inputs, output: seen.update(before=inputs[0], after=output))
    model(x)
    return seen["before"].numpy(), seen["after"].numpy()


@torch.no_grad()
def dropout_ensemble(model: nn.Module, x: torch.Tensor, labels: np.ndarray, n_masks: int, seed: int = 0) -> dict:
    """Accuracy of the deterministic (weight-scaled) net against averages over 1..n_masks
    dropout masks at test time (dropout on, batch norm in inference mode)."""
    model = copy.deepcopy(model).eval()
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    if not dropouts:
        raise ValueError("the model has no dropout layer")

    def probabilities(logits):
        return torch.sigmoid(logits.squeeze(1)) if logits.shape[1] == 1 else torch.softmax(logits, 1)

    def accuracy(p):
        predicted = (p >= 0.5).long() if p.ndim == 1 else p.argmax(1)
        return float((predicted.numpy() == labels).mean())

    deterministic = accuracy(probabilities(model(x)))
    for m in dropouts:
        m.train()
    torch.manual_seed(seed)
    total, curve, singles = 0, [], []
    for k in range(1, n_masks + 1):
        p = probabilities(model(x))
        singles.append(accuracy(p))
        total = total + p
        curve.append(accuracy(total / k))
    return {"deterministic": deterministic, "ensemble": curve, "single_mask": singles}


def fig_batchnorm_activations(model, meta, images_raw, labels, png_path, batch: int = 64, channels: int = 4) -> dict:
    x = torch.from_numpy(asinh_stretch(np.asarray(images_raw[:batch])))
    before, after = batchnorm_activations(model, x)
    fig, axes = plt.subplots(2, channels, figsize=(3.6 * channels, 6.4), sharey="row")
    out = {}
    for c in range(min(channels, before.shape[1])):
        for row, (values, name) in enumerate([(before, "before BN"), (after, "after BN")]):
            v = values[:, c].ravel()
            axes[row][c].hist(v, bins=60, color="tab:blue" if row == 0 else "tab:green", alpha=0.8)
            axes[row][c].set_title(f"channel {c} {name}\nmean {v.mean():.2f}, std {v.std():.2f}", fontsize=12)
            out[f"channel{c}_{name.replace(' ', '_')}"] = {"mean": float(v.mean()), "std": float(v.std())}
    fig.suptitle(f"Batch normalisation of a real batch ({len(x)} images), first BN layer of {meta['architecture']}")
    save_figure(fig, png_path)
    return out


def fig_dropout_ensemble(model, meta, images_raw, labels, png_path, n_masks: int = 40) -> dict:
    x = torch.from_numpy(asinh_stretch(np.asarray(images_raw)))
    result = dropout_ensemble(model, x, np.asarray(labels), n_masks)
    k = np.arange(1, n_masks + 1)
    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    ax.plot(k, result["single_mask"], "o", ms=4, alpha=0.5, label="one thinned network (one dropout mask)")
    ax.plot(k, result["ensemble"], label="average over k masks (Monte-Carlo dropout)")
    ax.axhline(result["deterministic"], color="k", ls="--", label="full network, weights scaled (standard test time)")
    ax.set(xlabel="number of dropout masks k", ylabel="test accuracy",
           title=f"Dropout as an ensemble of thinned networks ({meta['architecture']})")
    ax.legend(loc="lower right")
    save_figure(fig, png_path)
    return {"deterministic": result["deterministic"], "ensemble_final": result["ensemble"][-1],
            "single_mask_mean": float(np.mean(result["single_mask"]))}
