"""Feature extractor / head split, frozen features, gradient reversal and the domain-adaptive net.

Lecture 002, "Dealing with a lack of labelled data": the convolutional part of a CNN is a feature
extractor; recycle it (frozen, new head) or fine-tune it. Domain adaptation (Ganin et al. 2016,
JMLR 17, 59; Ciprijanovic et al. 2021, MNRAS 506, 677, "DeepMerge II") aligns the features of a
labelled source and an unlabelled target domain: with an MMD penalty, or with a domain
discriminator behind a gradient-reversal layer.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import create_model, register_model

ADAPTATION_METHODS = ("none", "mmd", "adversarial")


def split_backbone_head(model: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """(feature extractor, head) sharing the model's parameters: head(features(x)) == model(x).

    The head is the last Linear layer: of an nn.Sequential (the lecture CNNs: winning_cnn,
    deepmerge, simple_cnn, lenet5), or the `fc` of a network whose children run in order
    (torchvision ResNets, DeepLens).
    """
    if isinstance(model, DomainAdaptiveNet):
        return model.features, model.head
    if isinstance(model, nn.Sequential):
        last = [i for i, layer in enumerate(model) if isinstance(layer, nn.Linear)]
        if not last or last[-1] != len(model) - 1:
            raise ValueError(f"{type(model).__name__}: the last layer is not a Linear head")
        return model[: last[-1]], model[last[-1]]
    children = list(model.named_children())
    if children and children[-1][0] == "fc" and isinstance(children[-1][1], nn.Linear):
        return nn.Sequential(*(m for _, m in children[:-1]), nn.Flatten()), children[-1][1]
    raise ValueError(f"cannot split {type(model).__name__} into a feature extractor and a Linear head")


def replace_head(model: nn.Module, head: nn.Module) -> None:
    """Put `head` where split_backbone_head found the model's head."""
    if isinstance(model, DomainAdaptiveNet):
        model.head = head
    elif isinstance(model, nn.Sequential):
        model[len(model) - 1] = head
    else:
        model.fc = head


class Frozen(nn.Module):
    """A feature extractor that does not learn: no gradients, and its batch-norm statistics and
    dropout stay in evaluation mode even when the network around it trains."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module.requires_grad_(False)
        self.module.eval()

    def train(self, mode: bool = True) -> Frozen:
        super().train(mode)
        self.module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coefficient):
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.coefficient * grad, None


def reverse_gradient(x: torch.Tensor, coefficient: float = 1.0) -> torch.Tensor:
    """Identity forward; the gradient flowing back is multiplied by -coefficient (Ganin+2016)."""
    return _ReverseGradient.apply(x, float(coefficient))


class DomainAdaptiveNet(nn.Module):
    """A backbone split into features and label head, and (adversarial) a domain discriminator.

    forward(x) gives the label logits, so evaluation, `deepsky predict` and MLflow see an ordinary
    classifier; the domain-adaptation task reads `features`, `head`, `discriminator` and `adaptation`.
    """

    def __init__(self, features: nn.Module, head: nn.Linear, adaptation: str, hidden: int):
        super().__init__()
        if adaptation not in ADAPTATION_METHODS:
            raise ValueError(f"adaptation must be one of {ADAPTATION_METHODS}, got {adaptation!r}")
        self.features, self.head, self.adaptation = features, head, adaptation
        self.discriminator = None
        if adaptation == "adversarial":
            self.discriminator = nn.Sequential(
                nn.Linear(head.in_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def adaptation_method(model: nn.Module) -> str:
    return getattr(model, "adaptation", "none")


@register_model(family="domains")
def domain_adaptive(in_channels, num_classes, image_size, reference=False, *, backbone: str = "deepmerge",
                    adaptation: str = "mmd", hidden: int = 32, **backbone_kwargs):
    """A registry backbone (default DeepMerge) with MMD or domain-adversarial adaptation (DeepMerge II)."""
    base = create_model(backbone, in_channels, num_classes, image_size=image_size, **backbone_kwargs)
    features, head = split_backbone_head(base)
    return DomainAdaptiveNet(features, head, adaptation, hidden)
