"""CNNs written out in the lectures or in the astrophysics papers they discuss.

* ``simple_cnn``      - lecture 000's first Keras model.
* ``winning_cnn``     - the lecture's "winning" 5-block CNN.
* ``deepmerge``       - DeepMerge (Ciprijanovic et al. 2020, A&C 32, 100390; used in 2021).
* ``lenet5``          - LeNet-5 (LeCun et al. 1998).
* ``deeplens_resnet`` - CMU DeepLens (Lanusse et al. 2018, MNRAS 473, 3895).

Every builder computes its flattened size from ``image_size`` (square inputs),
so all models accept any ``image_size >= 32`` and any ``in_channels``.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence, Union

import torch
from torch import nn

from ._common import check_positive_size, conv_out, make_activation
from .registry import register_model

__all__ = [
    "build_simple_cnn",
    "build_winning_cnn",
    "build_deepmerge",
    "build_lenet5",
    "build_deeplens_resnet",
    "PreActBottleneck",
]


# =========================================================================== simple CNN
def build_simple_cnn(in_channels: int, num_classes: int, image_size: int, *, filters: int = 32,
                     hidden: int = 1668, activation: str = "relu") -> nn.Sequential:
    """Lecture 000's Keras model.

    ``Conv2D(32, 3x3, padding='valid', use_bias=False) -> ReLU -> MaxPool(2) ->
    Flatten -> Dense(1668, use_bias=False) -> ReLU -> Dense(num_classes)``.
    Almost all parameters sit in the first Dense layer
    (``32 * ((S-2)//2)**2 * 1668``: 28.2 M at 48x48).
    """
    s = conv_out(image_size, 3) // 2
    check_positive_size(s, "simple_cnn pool")
    return nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(in_channels, filters, 3, bias=False)),
        ("act1", make_activation(activation)),
        ("pool", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(filters * s * s, hidden, bias=False)),
        ("act2", make_activation(activation)),
        ("fc2", nn.Linear(hidden, num_classes)),
    ]))


# =========================================================================== winning CNN
def _winning_final_size(image_size: int, n_blocks: int, pad: int) -> int:
    s = image_size
    for _ in range(n_blocks):
        s = conv_out(s, 3, 1, pad) // 2
        if s < 1:
            return 0
    return s


def build_winning_cnn(in_channels: int, num_classes: int, image_size: int, *,
                      channels: Sequence[int] = (32, 32, 64, 128, 128),
                      dense: Sequence[int] = (256, 128), dropout: float = 0.5,
                      batch_norm: bool = True,
                      activation: Union[str, Sequence[str]] = "relu",
                      padding: str = "auto") -> nn.Sequential:
    """The lecture's "winning" CNN.

    Five blocks ``Conv2D(c, 3x3) -> activation -> BatchNorm -> MaxPool(2)`` with
    ``c = 32, 32, 64, 128, 128``, then ``Flatten -> Dropout(0.5) -> Dense(256) ->
    act -> Dense(128) -> act -> Dense(num_classes)``.

    Keyword arguments
        ``dropout``: rate of the single Dropout before the dense head (0 removes
        the module).  ``batch_norm``: False removes every BatchNorm.
        ``activation``: one of relu, elu, prelu, tanh, sigmoid, leaky_relu (also
        gelu, selu) used in every block and dense layer; or a sequence with one
        name per conv block (the lecture puts ``elu`` on one block), in which
        case the dense layers keep ReLU.
        ``padding``: ``"valid"`` (Keras default, no padding), ``"same"``
        (padding=1) or ``"auto"`` (default): valid when the five valid
        conv+pool blocks leave at least a 1x1 map (``image_size >= 94``),
        otherwise padding=1 in *all* blocks.  At 48x48, valid padding would
        vanish after block 4 (48->23->10->4->1->0), so ``auto`` uses padding=1:
        48->24->12->6->3->1, i.e. 128 flattened features.
    """
    n = len(channels)
    if isinstance(activation, str):
        conv_acts = [activation] * n
        dense_act = activation
    else:
        conv_acts = list(activation)
        if len(conv_acts) != n:
            raise ValueError(f"need {n} activations (one per conv block), got {len(conv_acts)}")
        dense_act = "relu"
    if padding == "auto":
        pad = 0 if _winning_final_size(image_size, n, 0) >= 1 else 1
    elif padding in ("valid", "same"):
        pad = 0 if padding == "valid" else 1
    else:
        raise ValueError(f"padding must be 'auto', 'valid' or 'same', got {padding!r}")
    final = _winning_final_size(image_size, n, pad)
    check_positive_size(final, f"winning_cnn (padding={padding!r}, image_size={image_size})")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")

    layers: list[tuple[str, nn.Module]] = []
    c_in = in_channels
    for i, (c, act) in enumerate(zip(channels, conv_acts), start=1):
        layers.append((f"conv{i}", nn.Conv2d(c_in, c, 3, padding=pad)))
        layers.append((f"act{i}", make_activation(act)))
        if batch_norm:
            layers.append((f"bn{i}", nn.BatchNorm2d(c)))
        layers.append((f"pool{i}", nn.MaxPool2d(2)))
        c_in = c
    layers.append(("flatten", nn.Flatten()))
    if dropout > 0:
        layers.append(("dropout", nn.Dropout(dropout)))
    f_in = c_in * final * final
    for j, width in enumerate(dense, start=1):
        layers.append((f"fc{j}", nn.Linear(f_in, width)))
        layers.append((f"fc_act{j}", make_activation(dense_act)))
        f_in = width
    layers.append(("head", nn.Linear(f_in, num_classes)))
    return nn.Sequential(OrderedDict(layers))


# =========================================================================== DeepMerge
def build_deepmerge(in_channels: int, num_classes: int, image_size: int, *,
                    dropout: float = 0.5, activation: str = "relu") -> nn.Sequential:
    """DeepMerge CNN (Ciprijanovic et al. 2020 A&C 32 100390; 2021 MNRAS 506 677).

    Layer plan at the reference input 3x75x75 (2 classes), trainable parameters
    in brackets::

        Conv2d(3->8, 5x5, pad 2) [608]  -> ReLU -> BatchNorm(8)  [16] -> MaxPool 2 -> Dropout
        Conv2d(8->16, 3x3, pad 1) [1168]-> ReLU -> BatchNorm(16) [32] -> MaxPool 2 -> Dropout
        Conv2d(16->32, 3x3, pad 1)[4640]-> ReLU -> BatchNorm(32) [64] -> MaxPool 2 -> Dropout
        Flatten (32*9*9 = 2592) -> Linear 64 [165952] -> ReLU -> Linear 32 [2080] -> ReLU
        -> Linear 2 [66]                                          total 174,626

    Conv -> ReLU -> BatchNorm ordering and the parameter-free Dropout(0.5)
    after every pooling follow the public DeepMerge code; ``dropout=0``
    removes them.  The original Keras code used softmax/sigmoid in the dense
    layers; ReLU is used here (``activation`` kwarg).  For other sizes the
    flattened size is ``32 * (S//8)**2``.
    """
    s = image_size // 2 // 2 // 2
    check_positive_size(s, "deepmerge")
    layers: list[tuple[str, nn.Module]] = []
    spec = [(8, 5, 2), (16, 3, 1), (32, 3, 1)]
    c_in = in_channels
    for i, (c, k, p) in enumerate(spec, start=1):
        layers += [(f"conv{i}", nn.Conv2d(c_in, c, k, padding=p)),
                   (f"act{i}", make_activation(activation)),
                   (f"bn{i}", nn.BatchNorm2d(c)),
                   (f"pool{i}", nn.MaxPool2d(2))]
        if dropout > 0:
            layers.append((f"drop{i}", nn.Dropout(dropout)))
        c_in = c
    layers += [("flatten", nn.Flatten()),
               ("fc1", nn.Linear(32 * s * s, 64)), ("fc_act1", make_activation(activation)),
               ("fc2", nn.Linear(64, 32)), ("fc_act2", make_activation(activation)),
               ("fc3", nn.Linear(32, num_classes))]
    return nn.Sequential(OrderedDict(layers))


# =========================================================================== LeNet-5
def build_lenet5(in_channels: int, num_classes: int, image_size: int, *,
                 activation: str = "tanh", pool: str = "avg") -> nn.Sequential:
    """LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, Proc. IEEE 86, 2278).

    ``C1 Conv(6, 5x5) -> tanh -> S2 AvgPool 2 -> C3 Conv(16, 5x5) -> tanh -> S4
    AvgPool 2 -> Flatten -> C5/F 120 -> tanh -> F6 84 -> tanh -> out``.

    Modern simplifications, documented: tanh (not the scaled 1.7159 tanh;
    ``activation="relu"`` available), parameter-free average pooling instead
    of trainable subsampling (``pool="max"`` available), full C3 connectivity
    (the paper's sparse table has 1,516 instead of 2,416 weights) and a linear
    output instead of RBF units.  At 1x32x32 with 10 classes this gives 61,706
    parameters vs the paper's "about 60,000".  For other inputs the
    flattened size is ``16 * (((S-4)//2 - 4)//2)**2``.
    """
    s = conv_out(conv_out(image_size, 5) // 2, 5) // 2
    check_positive_size(s, "lenet5")
    Pool = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}[pool]
    return nn.Sequential(OrderedDict([
        ("c1", nn.Conv2d(in_channels, 6, 5)), ("act1", make_activation(activation)),
        ("s2", Pool(2)),
        ("c3", nn.Conv2d(6, 16, 5)), ("act3", make_activation(activation)),
        ("s4", Pool(2)),
        ("flatten", nn.Flatten()),
        ("c5", nn.Linear(16 * s * s, 120)), ("act5", make_activation(activation)),
        ("f6", nn.Linear(120, 84)), ("act6", make_activation(activation)),
        ("out", nn.Linear(84, num_classes)),
    ]))


# =========================================================================== CMU DeepLens
class PreActBottleneck(nn.Module):
    """Pre-activated bottleneck residual unit (He et al. 2016b) as in CMU DeepLens.

    ``[BN -> act] -> Conv1x1(mid, stride) -> BN -> act -> Conv3x3(mid) -> BN ->
    act -> Conv1x1(out)`` plus a shortcut: identity, or (when the shape
    changes) a strided 1x1 convolution of the pre-activated input.
    ``preactivated=True`` skips the leading BN/act (the stem already applied it).
    """

    def __init__(self, in_ch: int, mid: int, out_ch: int, stride: int = 1, *,
                 preactivated: bool = False, activation: str = "elu"):
        super().__init__()
        self.preact = (nn.Identity() if preactivated
                       else nn.Sequential(nn.BatchNorm2d(in_ch), make_activation(activation)))
        self.conv1 = nn.Conv2d(in_ch, mid, 1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.act1 = make_activation(activation)
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.act2 = make_activation(activation)
        self.conv3 = nn.Conv2d(mid, out_ch, 1)
        self.shortcut = (nn.Conv2d(in_ch, out_ch, 1, stride=stride)
                         if stride != 1 or in_ch != out_ch else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xa = self.preact(x)
        y = self.act1(self.bn1(self.conv1(xa)))
        y = self.act2(self.bn2(self.conv2(y)))
        y = self.conv3(y)
        return y + (x if self.shortcut is None else self.shortcut(xa))


class DeepLensResNet(nn.Module):
    # Its backward pass segfaults in oneDNN on channels-last CPU tensors (torch 2.14, 48 px, batch
    # 64): the training loop keeps this model in NCHW order.
    channels_last = False

    def __init__(self, in_channels: int, num_classes: int, *, stem_width: int = 32,
                 base_width: int = 16, n_stages: int = 5, units_per_stage: int = 3,
                 activation: str = "elu"):
        super().__init__()
        self.stem = nn.Sequential(OrderedDict([
            ("conv", nn.Conv2d(in_channels, stem_width, 7, padding=3, bias=False)),
            ("bn", nn.BatchNorm2d(stem_width)),
            ("act", make_activation(activation)),
        ]))
        stages: list[nn.Module] = []
        c_in = stem_width
        for k in range(n_stages):
            mid = base_width * 2 ** k
            out = 2 * mid
            units = []
            for u in range(units_per_stage):
                stride = 2 if (u == 0 and k > 0) else 1
                units.append(PreActBottleneck(c_in, mid, out, stride,
                                              preactivated=(k == 0 and u == 0),
                                              activation=activation))
                c_in = out
            stages.append(nn.Sequential(*units))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.pool(self.stages(self.stem(x)))))


def build_deeplens_resnet(in_channels: int, num_classes: int, image_size: int, *,
                          stem_width: int = 32, base_width: int = 16, n_stages: int = 5,
                          units_per_stage: int = 3, activation: str = "elu") -> DeepLensResNet:
    """CMU DeepLens residual network (Lanusse et al. 2018, MNRAS 473, 3895, Sect. 3 / Fig. 3).

    Layer plan (defaults reproduce the paper's 46-layer network; ELU everywhere)::

        stem    Conv 7x7, 32 filters (no bias) -> BN -> ELU          full resolution, no pooling
        stage 1 3 x PreActBottleneck(mid 16,  out 32)                 S
        stage 2 3 x PreActBottleneck(mid 32,  out 64),  1st stride 2  S/2
        stage 3 3 x PreActBottleneck(mid 64,  out 128), 1st stride 2  S/4
        stage 4 3 x PreActBottleneck(mid 128, out 256), 1st stride 2  S/8
        stage 5 3 x PreActBottleneck(mid 256, out 512), 1st stride 2  S/16
        global average pooling -> Linear(512, num_classes)   (paper: 1 sigmoid unit)

    Convolutions: 1 + 5*3*3 = 46 (+4 projection shortcuts).  The
    downsampling stride sits on the first 1x1 convolution, as in the public
    Keras port of the Theano/Lasagne original; no BN/act after the last unit.
    The paper gives no parameter count; ours is 3,508,545 at 1x45x45
    (``reference_params.csv`` records it as "ours").  Smaller variants:
    ``base_width`` (bottleneck width of stage 1), ``n_stages``,
    ``units_per_stage``; e.g. ``base_width=8, n_stages=4`` has ~0.22 M.
    """
    size = image_size
    for _ in range(n_stages - 1):
        size = conv_out(size, 1, 2)
    check_positive_size(size, "deeplens_resnet")
    return DeepLensResNet(in_channels, num_classes, stem_width=stem_width, base_width=base_width,
                          n_stages=n_stages, units_per_stage=units_per_stage,
                          activation=activation)


# =========================================================================== entry points
@register_model(family="lecture")
def simple_cnn(in_channels, num_classes, image_size, reference=False, **kw):
    """Lecture 000 Keras CNN: Conv(32, 3x3) -> MaxPool -> Dense(1668) -> Dense."""
    return build_simple_cnn(in_channels, num_classes, image_size, **kw)


@register_model(family="lecture")
def winning_cnn(in_channels, num_classes, image_size, reference=False, **kw):
    """Lecture's winning CNN: 5 x (Conv3x3, act, BN, MaxPool) -> Dropout -> 256 -> 128."""
    return build_winning_cnn(in_channels, num_classes, image_size, **kw)


@register_model(family="deepmerge")
def deepmerge(in_channels, num_classes, image_size, reference=False, **kw):
    """DeepMerge CNN (Ciprijanovic+2020/2021), 174,626 parameters at 3x75x75, 2 classes."""
    return build_deepmerge(in_channels, num_classes, image_size, **kw)


@register_model(family="lenet")
def lenet5(in_channels, num_classes, image_size, reference=False, **kw):
    """LeNet-5 (LeCun+1998), ~60k parameters at 1x32x32, 10 classes."""
    return build_lenet5(in_channels, num_classes, image_size, **kw)


@register_model(family="deeplens")
def deeplens_resnet(in_channels, num_classes, image_size, reference=False, **kw):
    """CMU DeepLens pre-activated bottleneck ResNet (Lanusse+2018), 46 layers."""
    return build_deeplens_resnet(in_channels, num_classes, image_size, **kw)
