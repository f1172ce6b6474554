"""Mask R-CNN for astronomical fields (lecture 002; He+2017, as used by Burke+2019 on DECam-like
fields): detection, instance segmentation and star/galaxy classification in one network.

``mask_rcnn_resnet18``: torchvision's ``MaskRCNN`` on a ResNet-18 + FPN backbone built from
scratch (no pretrained weights). Laptop choices, each for a reason:

* the stem takes the C bands of the field (not RGB), and the transform's mean/std are C zeros
  and ones: the fields arrive asinh-stretched in units of the sky noise;
* ``min_size = max_size = image_size``: fields are not resized to 800 px;
* the ResNet up to layer3 (stride 8; layer4 alone holds 8.4M of 11M weights) without the stem's
  max-pool, so the finest FPN level has stride 2, with anchors of 4-32 px (one size per level):
  sources are a few pixels across;
* GroupNorm instead of batch norm (He, Girshick & Dollar 2019 train Mask R-CNN from scratch
  with GN): no running statistics, so training-mode losses on validation fields are exact;
* a 64-channel FPN and mask head and a 256-wide box head (torchvision: 256, 256 and 1024).

``num_classes`` counts the object classes WITHOUT the background (2: star, galaxy); the
torchvision model gets ``num_classes + 1``. Calls:

* ``model(images, targets)`` (list of (C, H, W) tensors, list of target dicts): the loss dict;
* ``model.detect(images)``: torchvision's detections (boxes, labels 1..num_classes, scores,
  masks as (n, 1, H, W) probabilities), always in inference mode;
* ``model(x)`` with a (N, C, H, W) tensor: (N, num_classes) expected object counts per class
  (sum of the detection scores), so the network also fits the registry's image -> vector contract.
"""
from __future__ import annotations

import torch
from torch import nn

from .registry import register_model

__all__ = ["MaskRCNNDetector"]


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, channels // 4), channels)


class MaskRCNNDetector(nn.Module):
    def __init__(self, net: nn.Module, num_classes: int):
        super().__init__()
        self.net = net
        self.num_classes = num_classes

    def detect(self, images) -> list[dict]:
        was_training = self.net.training
        self.net.eval()
        try:
            return self.net(list(images))
        finally:
            self.net.train(was_training)

    def forward(self, images, targets=None):
        if targets is not None:
            return self.net(list(images), targets)
        counts = torch.zeros(len(images), self.num_classes, device=images[0].device)
        for row, found in enumerate(self.detect(images)):
            counts[row].index_add_(0, found["labels"] - 1, found["scores"])
        return counts


@register_model(family="mask_rcnn")
def mask_rcnn_resnet18(in_channels: int, num_classes: int, image_size: int, reference: bool = False,
                       fpn_channels: int = 64, box_width: int = 256,
                       anchor_sizes: tuple = (4, 8, 16, 32), detections_per_image: int = 100,
                       stem_pool: bool = False) -> nn.Module:
    """Mask R-CNN (He+2017) with a ResNet-18 (to layer3) + FPN backbone from scratch, GroupNorm, small anchors."""
    # torchvision is imported here, not with the registry: every job imports the registry (1 s saved each).
    from torchvision.models import resnet18
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    trunk = resnet18(weights=None, norm_layer=group_norm)
    trunk.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    if not stem_pool:  # stride 2 at the finest level: a star spans pixels of the feature map
        trunk.maxpool = nn.Identity()
    backbone = BackboneWithFPN(
        trunk, return_layers={"layer1": "0", "layer2": "1", "layer3": "2"},
        in_channels_list=[64, 128, 256], out_channels=fpn_channels, extra_blocks=LastLevelMaxPool(),
    )
    anchors = AnchorGenerator(sizes=tuple((int(s),) for s in anchor_sizes), aspect_ratios=((0.5, 1.0, 2.0),) * len(anchor_sizes))
    net = MaskRCNN(
        backbone, num_classes=None, min_size=image_size, max_size=image_size,
        image_mean=[0.0] * in_channels, image_std=[1.0] * in_channels, rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=500, rpn_pre_nms_top_n_test=500,
        rpn_post_nms_top_n_test=300, box_batch_size_per_image=128, box_detections_per_img=detections_per_image,
        box_head=TwoMLPHead(fpn_channels * 7 * 7, box_width), box_predictor=FastRCNNPredictor(box_width, num_classes + 1),
        mask_head=MaskRCNNHeads(fpn_channels, [fpn_channels] * 4, dilation=1),
        mask_predictor=MaskRCNNPredictor(fpn_channels, fpn_channels, num_classes + 1),
    )
    return MaskRCNNDetector(net, num_classes)
