"""Training-practice experiments of lectures 002/004 that are not plain K-fold training runs."""

from deepsky.practice.gradients import (
    DEFAULT_LABELS,
    DEFAULT_VARIANTS,
    EXTRA_VARIANTS,
    fig_gradient_norms,
    gradient_norms,
    init_ratios,
)

__all__ = [
    "DEFAULT_LABELS", "DEFAULT_VARIANTS", "EXTRA_VARIANTS", "fig_gradient_norms", "gradient_norms", "init_ratios",
]
