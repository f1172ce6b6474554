"""Small shared helpers for the model builders (activations, size arithmetic)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
import torch.nn.functional as F

#: Activation names accepted by every builder that takes an ``activation`` kwarg.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "elu": lambda: nn.ELU(inplace=True),
    "prelu": lambda: nn.PReLU(),  # one learnable slope per layer
    "leaky_relu": lambda: nn.LeakyReLU(0.01, inplace=True),
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "selu": lambda: nn.SELU(inplace=True),
    "identity": nn.Identity,
    "linear": nn.Identity,
}


def make_activation(name: str) -> nn.Module:
    """Return a fresh activation module for ``name`` (case-insensitive)."""
    key = str(name).lower().replace("-", "_")
    if key not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}"
        )
    return ACTIVATIONS[key]()


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution/pooling along one axis (floor mode)."""
    return (size + 2 * padding - kernel) // stride + 1


def check_positive_size(size: int, where: str) -> None:
    if size < 1:
        raise ValueError(f"feature map vanished ({size} px) at {where}; use a larger image_size")


class ResizeInput(nn.Module):
    """Bilinearly upsample inputs smaller than ``min_size`` before calling ``net``.

    Used for torchvision networks whose fixed stems need a minimum input
    (AlexNet: 63 px, Inception v3: 75 px).  Inputs already at least
    ``min_size`` pass through untouched, so the module stays valid for any size.
    The wrapped network is available as ``.net``.
    """

    def __init__(self, net: nn.Module, min_size: int):
        super().__init__()
        self.min_size = int(min_size)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h < self.min_size or w < self.min_size:
            size = (max(h, self.min_size), max(w, self.min_size))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return self.net(x)

    def extra_repr(self) -> str:
        return f"min_size={self.min_size}"
