"""A readable U-Net (Ronneberger, Fischer & Brox 2015) for per-pixel outputs (lecture 002).

Encoder: `depth` levels of two 3x3 convolutions (batch norm, ReLU), each followed by 2x2 max
pooling that halves the image and doubles the channels. Bottleneck: two more convolutions with
dropout (MC dropout at prediction time). Decoder: transposed convolutions double the size back,
the encoder's feature map of the same size is concatenated (the skip connection keeps the fine
detail the pooling lost), two convolutions. A 1x1 convolution gives `num_classes` values per
pixel: output (N, num_classes, H, W) for an input (N, in_channels, H, W), H and W divisible by
2**depth.
"""
from __future__ import annotations

import torch
from torch import nn

from .registry import register_model

__all__ = ["UNet"]


def double_conv(c_in: int, c_out: int, dropout: float = 0.0) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    if dropout > 0:
        layers.append(nn.Dropout2d(dropout))
    layers += [nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class UNet(nn.Module):
    def __init__(self, in_channels: int, num_outputs: int, base_channels: int = 16, depth: int = 3,
                 dropout: float = 0.1):
        super().__init__()
        widths = [base_channels * 2**k for k in range(depth + 1)]
        self.depth = depth
        self.down = nn.ModuleList()
        c_in = in_channels
        for width in widths[:-1]:
            self.down.append(double_conv(c_in, width))
            c_in = width
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = double_conv(widths[-2], widths[-1], dropout)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for k in reversed(range(depth)):
            self.up.append(nn.ConvTranspose2d(widths[k + 1], widths[k], 2, stride=2))
            self.merge.append(double_conv(2 * widths[k], widths[k], dropout if k == depth - 1 else 0.0))
        self.head = nn.Conv2d(widths[0], num_outputs, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 2**self.depth or x.shape[-2] % 2**self.depth:
            raise ValueError(f"U-Net of depth {self.depth} needs H and W divisible by {2**self.depth}, got {tuple(x.shape[-2:])}")
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.head(x)


@register_model(family="unet", min_image_size=8)
def unet(in_channels: int, num_classes: int, image_size: int, reference: bool = False, base_channels: int = 16,
         depth: int = 3, dropout: float = 0.1) -> nn.Module:
    """U-Net encoder-decoder with skip connections: num_classes outputs per pixel."""
    if image_size % 2**depth:
        raise ValueError(f"unet depth {depth} needs image_size divisible by {2**depth}, got {image_size}")
    return UNet(in_channels, num_classes, base_channels=base_channels, depth=depth, dropout=dropout)
