"""Networks for photometric redshifts (lecture 002).

* ``photoz_mlp``       - a fully connected network on a flat input vector (the magnitudes and
  colours of a catalogue row, ``image_size=1``; an image is flattened), as in D'Isanto &
  Polsterer 2018's MDN on photometry.
* ``photoz_inception`` - a laptop-sized Pasquet+2019 CNN: a 5x5 convolution, two inception blocks
  (parallel 1x1, 3x3 and 5x5 convolutions and a pooled branch) with average pooling between them,
  then fully connected layers. Pooling to a fixed 4x4 grid keeps the position information that
  Pasquet's flattening keeps, for any cutout size.

The output is the task's head (one redshift, or 3K mixture parameters).
"""
from __future__ import annotations

import torch
from torch import nn

from ._common import make_activation
from .registry import register_model

__all__ = ["PhotozMLP", "PhotozInception"]


class PhotozMLP(nn.Module):
    def __init__(self, in_features: int, num_classes: int, widths=(128, 128, 64), activation: str = "relu",
                 dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        f_in = in_features
        for width in widths:
            layers += [nn.Linear(f_in, width), make_activation(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            f_in = width
        layers.append(nn.Linear(f_in, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _conv(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2), nn.PReLU(c_out))


class Inception(nn.Module):
    """Pasquet's inception block: 1x1, 1x1-3x3, 1x1-5x5 and pool-1x1 branches, concatenated."""

    def __init__(self, c_in: int, width: int):
        super().__init__()
        self.one = _conv(c_in, width, 1)
        self.three = nn.Sequential(_conv(c_in, width, 1), _conv(width, width, 3))
        self.five = nn.Sequential(_conv(c_in, width, 1), _conv(width, width, 5))
        self.pool = nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1), _conv(c_in, width, 1))
        self.out_channels = 4 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.one(x), self.three(x), self.five(x), self.pool(x)], dim=1)


class PhotozInception(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, stem: int = 16, widths=(8, 16), hidden: int = 128,
                 dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [_conv(in_channels, stem, 5), nn.AvgPool2d(2)]
        c = stem
        for width in widths:
            block = Inception(c, width)
            layers += [block, nn.AvgPool2d(2)]
            c = block.out_channels
        layers.append(nn.AdaptiveAvgPool2d(4))
        self.features = nn.Sequential(*layers)
        head: list[nn.Module] = [nn.Flatten(), nn.Linear(16 * c, hidden), nn.PReLU(hidden)]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head += [nn.Linear(hidden, hidden), nn.PReLU(hidden), nn.Linear(hidden, num_classes)]
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model(family="photoz", min_image_size=1)
def photoz_mlp(in_channels: int, num_classes: int, image_size: int, reference: bool = False, *,
               widths=(128, 128, 64), activation: str = "relu", dropout: float = 0.0) -> nn.Module:
    """Fully connected network on a flat vector (photometry: in_channels features, image_size 1)."""
    return PhotozMLP(in_channels * image_size * image_size, num_classes, tuple(widths), activation, dropout)


@register_model(family="photoz", min_image_size=16)
def photoz_inception(in_channels: int, num_classes: int, image_size: int, reference: bool = False, *,
                     stem: int = 16, widths=(8, 16), hidden: int = 128, dropout: float = 0.0) -> nn.Module:
    """Pasquet+2019-like inception CNN on multi-band cutouts, laptop-sized."""
    return PhotozInception(in_channels, num_classes, stem, tuple(widths), hidden, dropout)
