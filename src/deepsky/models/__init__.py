"""Model registry with every architecture of the lectures.

>>> from deepsky.models import create_model, list_models
>>> model = create_model("winning_cnn", in_channels=3, num_classes=1, image_size=48, dropout=0.3)
>>> list_models("resnet*")
['resnet18', 'resnet34', 'resnet50']

``create_model(name, in_channels, num_classes, image_size, **kwargs)`` returns a
module mapping ``(N, in_channels, image_size, image_size)`` to logits
``(N, num_classes)``; ``reference=True`` (or :func:`reference_model`) builds
the unmodified published network for parameter-count comparisons.
"""
from .registry import (
    ModelInfo,
    UnknownModelError,
    count_parameters,
    create_model,
    list_families,
    list_models,
    model_info,
    parameter_table,
    reference_model,
    reference_table,
    register_model,
)

# Importing the family modules registers their entry points.
from . import lecture_cnns, practice_nets, torchvision_nets  # noqa: E402,F401
from . import cosmo_graphs_nets  # noqa: E402,F401
from . import lightcurves_nets  # noqa: E402,F401
from . import photoz_nets  # noqa: E402,F401
from . import cmb_nets  # noqa: E402,F401
from . import domains_nets  # noqa: E402,F401
from . import deblend_nets  # noqa: E402,F401
from . import detection_nets  # noqa: E402,F401

__all__ = [
    "create_model",
    "list_models",
    "list_families",
    "model_info",
    "register_model",
    "count_parameters",
    "parameter_table",
    "reference_model",
    "reference_table",
    "ModelInfo",
    "UnknownModelError",
]
