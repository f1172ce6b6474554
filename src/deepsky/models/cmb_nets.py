"""DCGAN (Radford, Metz & Chintala 2016, ICLR; arXiv:1511.06434), lecture 003 "Deep Convolutional GAN".

The paper's recipe: strided convolutions in D and fractionally-strided (transposed) convolutions in
G instead of pooling; batch norm in both except G's output and D's input layer; ReLU in G with a
tanh output, LeakyReLU(0.2) in D; weights from N(0, 0.02). Sizes follow the image: G projects z to
a base x base map (base 3..5, e.g. 4 for 32 and 64 pixels) and doubles it k times, D mirrors it.
Channels double per halving from `base_width` (the paper's 64x64 LSUN model: z of 100, 1024
channels at 4x4, i.e. base_width 128).

`model(x)` is D's logit (N, num_classes): the registry's contract for every architecture.
"""

from __future__ import annotations

import torch
from torch import nn

from deepsky.models.registry import register_model


def stages_for(image_size: int) -> tuple[int, int]:
    """(base, k): image_size = base * 2**k with base in 3..5 and k >= 2."""
    base, k = int(image_size), 0
    while base % 2 == 0 and base // 2 >= 3:
        base, k = base // 2, k + 1
    if k < 2 or base > 5:
        raise ValueError(f"dcgan needs image_size = base * 2**k with base 3, 4 or 5 and k >= 2 (16, 24, 32, 48, 64...), got {image_size}")
    return base, k


def init_dcgan(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def generator(latent_dim: int, channels: int, base: int, k: int, width: int) -> nn.Sequential:
    top = width * 2 ** (k - 1)
    layers = [nn.ConvTranspose2d(latent_dim, top, base, 1, 0, bias=False), nn.BatchNorm2d(top), nn.ReLU(True)]
    for i in range(k - 1, 0, -1):
        c_in, c_out = width * 2**i, width * 2 ** (i - 1)
        layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
    layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def discriminator(channels: int, num_outputs: int, base: int, k: int, width: int) -> nn.Sequential:
    layers = [nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    for i in range(1, k):
        c_in, c_out = width * 2 ** (i - 1), width * 2**i
        layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
    layers += [nn.Conv2d(width * 2 ** (k - 1), num_outputs, base, 1, 0, bias=False), nn.Flatten()]
    return nn.Sequential(*layers)


class DCGAN(nn.Module):
    """A generator and a discriminator; calling the module runs the discriminator."""

    def __init__(self, channels: int, num_outputs: int, image_size: int, latent_dim: int, base_width: int):
        super().__init__()
        base, k = stages_for(image_size)
        self.latent_dim, self.image_size, self.channels = int(latent_dim), int(image_size), int(channels)
        self.generator = generator(self.latent_dim, channels, base, k, base_width)
        self.discriminator = discriminator(channels, num_outputs, base, k, base_width)
        self.apply(init_dcgan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.discriminator(x)

    def latent(self, n: int, device, generator: torch.Generator | None = None) -> torch.Tensor:
        """n latent vectors z ~ N(0, 1), shaped for the generator's first transposed convolution."""
        return torch.randn(n, self.latent_dim, 1, 1, device=device, generator=generator)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)


@register_model(family="dcgan", min_image_size=16)
def dcgan(in_channels: int, num_classes: int, image_size: int, reference: bool = False,
          latent_dim: int = 100, base_width: int = 64) -> DCGAN:
    """DCGAN (Radford+2016): transposed-convolution generator and strided-convolution discriminator."""
    if reference:
        latent_dim, base_width = 100, 128
    return DCGAN(in_channels, num_classes, image_size, latent_dim, base_width)
