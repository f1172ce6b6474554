"""Adapters around ``torchvision.models`` (always ``weights=None``: no downloads).

Each network is built by ``torchvision.models.<name>(weights=None,
num_classes=...)`` - never rewritten - and then adapted:

* ``in_channels != 3``: the first convolution is replaced by one with the
  same hyper-parameters and ``in_channels`` inputs (freshly initialised like
  torchvision does).
* small inputs, so that feature maps do not vanish:

  - ResNet/ResNeXt and GoogLeNet, ``image_size < 96`` (``small_input_stem``
    kwarg, default auto): the 7x7 stride-2 first conv becomes a 3x3 stride-1
    conv (CIFAR-style stem); the following stride-2 max-pool is kept.  At
    48x48 the last stage then sees 3x3 maps (ResNet) / 3x3 (GoogLeNet).
  - AlexNet, ``image_size < 64``: its 11x11 stride-4 stem plus three 3x3/2
    max-pools need at least 63 px, so inputs are bilinearly upsampled to
    64 px inside the module (:class:`~deepsky.models._common.ResizeInput`).
  - Inception v3, ``image_size < 75``: upsampled to 75 px (torchvision's
    documented minimum) the same way.
  - VGG-16 needs nothing: five 2x2 pools leave 1x1 at 32 px and its
    ``AdaptiveAvgPool2d(7)`` makes the classifier size-independent (so its
    parameter count is ~134 M at any input).

* ``reference=True`` returns the unmodified torchvision network (1000 classes,
  3 channels), e.g. for the parameter-count table.

GoogLeNet and Inception v3 are built with ``aux_logits=False,
init_weights=True``; in both training and eval mode they return a plain
logits tensor.
"""
from __future__ import annotations

import importlib
from typing import Optional

from torch import nn

from ._common import ResizeInput
from .registry import register_model


def _tvm():
    """torchvision.models, imported on first use: it costs ~1.5 s per process, and most
    workflow jobs (simulation, evaluation of lecture CNNs) never need it."""
    import torchvision.models

    return torchvision.models

__all__ = ["build_resnet", "build_alexnet", "build_vgg", "build_googlenet", "build_inception_v3",
           "SMALL_INPUT_THRESHOLD"]

#: Below this input size ResNets/GoogLeNet get a 3x3 stride-1 stem.
SMALL_INPUT_THRESHOLD = 96
ALEXNET_MIN_INPUT = 64
INCEPTION_MIN_INPUT = 75


def _kaiming_conv(conv: nn.Conv2d) -> nn.Conv2d:
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


def _small(image_size: int, small_input_stem: Optional[bool]) -> bool:
    return image_size < SMALL_INPUT_THRESHOLD if small_input_stem is None else bool(small_input_stem)


# --------------------------------------------------------------------------- ResNet / ResNeXt
def build_resnet(arch: str, in_channels: int, num_classes: int, image_size: int, *,
                 reference: bool = False, small_input_stem: Optional[bool] = None) -> nn.Module:
    """torchvision ResNet/ResNeXt ``arch`` adapted to ``in_channels``/``num_classes``/size."""
    if reference:
        return getattr(_tvm(), arch)(weights=None)
    net = getattr(_tvm(), arch)(weights=None, num_classes=num_classes)
    if _small(image_size, small_input_stem):
        net.conv1 = _kaiming_conv(nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False))
    elif in_channels != 3:
        net.conv1 = _kaiming_conv(nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False))
    return net


# --------------------------------------------------------------------------- AlexNet / VGG
def build_alexnet(in_channels: int, num_classes: int, image_size: int, *,
                  reference: bool = False, min_input: int = ALEXNET_MIN_INPUT) -> nn.Module:
    """torchvision AlexNet; inputs below ``min_input`` px are upsampled inside the module."""
    if reference:
        return _tvm().alexnet(weights=None)
    net = _tvm().alexnet(weights=None, num_classes=num_classes)
    if in_channels != 3:
        net.features[0] = _kaiming_conv(nn.Conv2d(in_channels, 64, 11, stride=4, padding=2))
    return ResizeInput(net, min_input) if image_size < min_input else net


def build_vgg(arch: str, in_channels: int, num_classes: int, image_size: int, *,
              reference: bool = False) -> nn.Module:
    """torchvision VGG (no batch norm); valid for any input >= 32 px unchanged."""
    if reference:
        return getattr(_tvm(), arch)(weights=None)
    net = getattr(_tvm(), arch)(weights=None, num_classes=num_classes)
    if in_channels != 3:
        net.features[0] = _kaiming_conv(nn.Conv2d(in_channels, 64, 3, padding=1))
    return net


# --------------------------------------------------------------------------- GoogLeNet / Inception
def _trunc_normal_conv(block: nn.Module) -> nn.Module:
    # torchvision's init_weights for GoogLeNet/Inception: trunc_normal(std=0.01), BN (1, 0).
    nn.init.trunc_normal_(block.conv.weight, mean=0.0, std=0.01, a=-2, b=2)
    return block


def build_googlenet(in_channels: int, num_classes: int, image_size: int, *,
                    reference: bool = False, small_input_stem: Optional[bool] = None) -> nn.Module:
    """torchvision GoogLeNet (Inception v1), ``aux_logits=False, init_weights=True``."""
    kw = dict(weights=None, aux_logits=False, init_weights=True)
    if reference:
        return _tvm().googlenet(**kw)
    net = _tvm().googlenet(num_classes=num_classes, **kw)
    if _small(image_size, small_input_stem):
        net.conv1 = _trunc_normal_conv(importlib.import_module("torchvision.models.googlenet").BasicConv2d(in_channels, 64, kernel_size=3, stride=1,
                                                     padding=1))
    elif in_channels != 3:
        net.conv1 = _trunc_normal_conv(importlib.import_module("torchvision.models.googlenet").BasicConv2d(in_channels, 64, kernel_size=7, stride=2,
                                                     padding=3))
    return net


def build_inception_v3(in_channels: int, num_classes: int, image_size: int, *,
                       reference: bool = False, min_input: int = INCEPTION_MIN_INPUT) -> nn.Module:
    """torchvision Inception v3, ``aux_logits=False, init_weights=True``.

    Inputs smaller than 75 px are bilinearly upsampled to 75 px inside the module.
    """
    kw = dict(weights=None, aux_logits=False, init_weights=True)
    if reference:
        return _tvm().inception_v3(**kw)
    net = _tvm().inception_v3(num_classes=num_classes, **kw)
    if in_channels != 3:
        net.Conv2d_1a_3x3 = _trunc_normal_conv(importlib.import_module("torchvision.models.inception").BasicConv2d(in_channels, 32, kernel_size=3,
                                                             stride=2))
    return ResizeInput(net, min_input) if image_size < min_input else net


# --------------------------------------------------------------------------- entry points
@register_model(family="alexnet")
def alexnet(in_channels, num_classes, image_size, reference=False, **kw):
    """AlexNet (Krizhevsky+2012; torchvision single-GPU variant)."""
    return build_alexnet(in_channels, num_classes, image_size, reference=reference, **kw)


@register_model(family="vgg")
def vgg16(in_channels, num_classes, image_size, reference=False, **kw):
    """VGG-16, configuration D (Simonyan & Zisserman 2015)."""
    return build_vgg("vgg16", in_channels, num_classes, image_size, reference=reference, **kw)


@register_model(family="inception")
def googlenet(in_channels, num_classes, image_size, reference=False, **kw):
    """GoogLeNet / Inception v1 (Szegedy+2015), without auxiliary classifiers."""
    return build_googlenet(in_channels, num_classes, image_size, reference=reference, **kw)


@register_model(family="inception")
def inception_v3(in_channels, num_classes, image_size, reference=False, **kw):
    """Inception v3 (Szegedy+2016), without auxiliary classifier."""
    return build_inception_v3(in_channels, num_classes, image_size, reference=reference, **kw)


@register_model(family="resnet")
def resnet18(in_channels, num_classes, image_size, reference=False, **kw):
    """ResNet-18 (He+2016)."""
    return build_resnet("resnet18", in_channels, num_classes, image_size, reference=reference, **kw)


@register_model(family="resnet")
def resnet34(in_channels, num_classes, image_size, reference=False, **kw):
    """ResNet-34 (He+2016)."""
    return build_resnet("resnet34", in_channels, num_classes, image_size, reference=reference, **kw)


@register_model(family="resnet")
def resnet50(in_channels, num_classes, image_size, reference=False, **kw):
    """ResNet-50 (He+2016), bottleneck blocks."""
    return build_resnet("resnet50", in_channels, num_classes, image_size, reference=reference, **kw)


@register_model(family="resnext")
def resnext50_32x4d(in_channels, num_classes, image_size, reference=False, **kw):
    """ResNeXt-50 32x4d (Xie+2017)."""
    return build_resnet("resnext50_32x4d", in_channels, num_classes, image_size,
                        reference=reference, **kw)
