"""Cutouts as pictures: colour composites of multi-band images for grids."""

from __future__ import annotations

import numpy as np


def to_rgb(image: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W, 3) in [0, 1]: bluest band in blue, reddest in red, asinh stretch."""
    image = np.asarray(image, dtype=np.float32)
    if image.shape[0] >= 3:
        channels = [image[-1], image[image.shape[0] // 2], image[0]]  # e.g. i, r, g
    else:
        channels = [image[0]] * 3
    out = []
    for band in channels:
        sky = np.median(band)
        noise = 1.4826 * np.median(np.abs(band - sky)) + 1e-12
        out.append(np.arcsinh((band - sky) / (3 * noise)))
    rgb = np.stack(out, axis=-1)
    top = np.percentile(rgb, 99.7)
    return np.clip(rgb / max(top, 1e-6), 0, 1)


def image_grid(axes, images, titles=None) -> None:
    for k, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if k < len(images):
            ax.imshow(to_rgb(images[k]), origin="lower", interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[k], fontsize=11)
