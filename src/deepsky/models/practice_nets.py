"""Networks for the training-practice experiments.

* ``mlp_deep``     - deep fully connected net on the flattened image: vanishing /
  exploding gradients vs activation, initialisation, batch norm, skips.
* ``plain_cnn``    - ``depth`` equal-width 3x3 conv layers (BN, ReLU).
* ``residual_cnn`` - the same layers with identity skips every 2 layers
  (He et al. 2016's "plain vs residual" degradation experiment).

``plain_cnn`` and ``residual_cnn`` with the same kwargs have *identical*
layers and parameter counts; only the skip connections differ.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ._common import make_activation
from .registry import register_model

__all__ = ["DeepMLP", "ConvStackNet", "build_mlp_deep", "build_conv_stack", "INITS"]

INITS = ("default", "xavier", "kaiming", "normal")


def _init_weights(model: nn.Module, init: str, init_std: float) -> None:
    """Re-initialise Linear/Conv weights (biases to zero); ``default`` keeps PyTorch's."""
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if init == "default":
        return
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if init == "xavier":
                nn.init.xavier_uniform_(m.weight)
            elif init == "kaiming":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            else:
                nn.init.normal_(m.weight, 0.0, init_std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# =========================================================================== deep MLP
class DeepMLP(nn.Module):
    """Flatten -> ``depth`` hidden layers ``Linear(width) [-> BN] -> act`` -> Linear(num_classes).

    With ``residual=True`` every hidden layer after the first is wrapped as
    ``h = h + layer(h)``.  ``hidden`` is a ModuleList, so per-layer gradient
    norms can be read from ``model.hidden[i][0].weight.grad``.
    """

    def __init__(self, in_features: int, num_classes: int, *, depth: int = 10, width: int = 64,
                 activation: str = "relu", batch_norm: bool = False, residual: bool = False):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.residual = bool(residual)
        self.flatten = nn.Flatten()
        self.hidden = nn.ModuleList()
        f_in = in_features
        for i in range(depth):
            layers: list[tuple[str, nn.Module]] = [("linear", nn.Linear(f_in, width))]
            if batch_norm:
                layers.append(("bn", nn.BatchNorm1d(width)))
            layers.append(("act", make_activation(activation)))
            self.hidden.append(nn.Sequential(OrderedDict(layers)))
            f_in = width
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.flatten(x)
        for i, layer in enumerate(self.hidden):
            h = h + layer(h) if (self.residual and i > 0) else layer(h)
        return self.head(h)


def build_mlp_deep(in_channels: int, num_classes: int, image_size: int, *, depth: int = 10,
                   width: int = 64, activation: str = "relu", batch_norm: bool = False,
                   residual: bool = False, init: str = "default",
                   init_std: float = 0.01) -> DeepMLP:
    """Deep MLP on the flattened ``in_channels*S*S`` image.

    ``depth``: number of hidden layers (``depth + 1`` Linear layers in total).
    ``activation``: sigmoid, tanh, relu, elu, leaky_relu, prelu, gelu, selu.
    ``init``: ``default`` (PyTorch), ``xavier`` (Glorot uniform), ``kaiming``
    (He normal) or ``normal`` (N(0, ``init_std``)).
    """
    model = DeepMLP(in_channels * image_size * image_size, num_classes, depth=depth, width=width,
                    activation=activation, batch_norm=batch_norm, residual=residual)
    _init_weights(model, init, init_std)
    return model


# =========================================================================== plain / residual CNN
class ConvPair(nn.Module):
    """Two 3x3 equal-width conv layers; with ``residual`` an identity skip around them.

    plain:    ``act(bn2(conv2(act(bn1(conv1(x))))))``
    residual: ``act(x + bn2(conv2(act(bn1(conv1(x))))))``  (He et al. 2016 basic block)
    """

    def __init__(self, width: int, *, residual: bool, batch_norm: bool, activation: str):
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=not batch_norm)
        self.bn1 = nn.BatchNorm2d(width) if batch_norm else nn.Identity()
        self.act1 = make_activation(activation)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=not batch_norm)
        self.bn2 = nn.BatchNorm2d(width) if batch_norm else nn.Identity()
        self.act2 = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(x + y if self.residual else y)


class ConvStackNet(nn.Module):
    """Stem conv -> ``depth/2`` ConvPairs (max-pools between stages) -> GAP -> Linear."""

    def __init__(self, in_channels: int, num_classes: int, *, depth: int = 20, width: int = 16,
                 residual: bool = False, batch_norm: bool = True, activation: str = "relu",
                 n_pools: int = 2):
        super().__init__()
        if depth < 2 or depth % 2:
            raise ValueError(f"depth must be an even number >= 2 (pairs of conv layers), got {depth}")
        n_pairs = depth // 2
        n_pools = max(0, min(int(n_pools), n_pairs - 1))
        self.stem = nn.Sequential(OrderedDict([
            ("conv", nn.Conv2d(in_channels, width, 3, padding=1, bias=not batch_norm)),
            ("bn", nn.BatchNorm2d(width) if batch_norm else nn.Identity()),
            ("act", make_activation(activation)),
        ]))
        # pools after pair indices splitting the pairs into n_pools+1 near-equal stages
        pool_after = {round(n_pairs * (k + 1) / (n_pools + 1)) - 1 for k in range(n_pools)}
        body: list[nn.Module] = []
        for i in range(n_pairs):
            body.append(ConvPair(width, residual=residual, batch_norm=batch_norm,
                                 activation=activation))
            if i in pool_after:
                body.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*body)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.pool(self.body(self.stem(x)))))


def build_conv_stack(in_channels: int, num_classes: int, image_size: int, *, residual: bool,
                     depth: int = 20, width: int = 16, batch_norm: bool = True,
                     activation: str = "relu", n_pools: int = 2, init: str = "kaiming",
                     init_std: float = 0.01) -> ConvStackNet:
    """Plain or residual stack of ``depth`` equal-width 3x3 conv layers.

    ``depth`` counts the conv layers of the body (even; a 3x3 stem conv mapping
    ``in_channels -> width`` and the final Linear come on top, so the
    network has ``depth + 2`` weight layers, as in He et al.'s 6n+2 CIFAR
    nets).  ``n_pools`` parameter-free 2x2 max-pools split the body into
    equal stages (default 2: 48 -> 24 -> 12) to keep CPU cost down without
    changing the width.  ``init`` defaults to He/Kaiming normal.
    """
    if image_size // 2 ** n_pools < 1:
        raise ValueError(f"image_size {image_size} too small for {n_pools} pools")
    model = ConvStackNet(in_channels, num_classes, depth=depth, width=width, residual=residual,
                         batch_norm=batch_norm, activation=activation, n_pools=n_pools)
    _init_weights(model, init, init_std)
    return model


# =========================================================================== entry points
@register_model(family="practice")
def mlp_deep(in_channels, num_classes, image_size, reference=False, **kw):
    """Deep MLP (depth=10, width=64) for activation / init / batch-norm experiments."""
    return build_mlp_deep(in_channels, num_classes, image_size, **kw)


@register_model(family="practice")
def plain_cnn(in_channels, num_classes, image_size, reference=False, **kw):
    """Plain stack of depth=20 equal-width 3x3 conv layers with BN."""
    return build_conv_stack(in_channels, num_classes, image_size, residual=False, **kw)


@register_model(family="practice")
def residual_cnn(in_channels, num_classes, image_size, reference=False, **kw):
    """Same as plain_cnn with identity skips every 2 conv layers."""
    return build_conv_stack(in_channels, num_classes, image_size, residual=True, **kw)
