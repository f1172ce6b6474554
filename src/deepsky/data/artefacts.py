"""Detector artefacts for the "solving the wrong problem" pitfall (lectures 000/001; Ribeiro et
al. 2016, husky vs wolf: the classifier learnt the snow, not the animal).

:func:`add_artefact` paints a bright bad column or a corner cross ("label stamp") onto chosen
images. The amplitude is ``strength`` times each image's own robust noise level per band (1.4826
MAD, as in :func:`deepsky.data.tensors.asinh_stretch`), so the artefact stands out by the same
number of sigma after the asinh normalisation whatever the image's flux scale. If a training set
carries the artefact in the lens class only, a CNN can reach a high accuracy by detecting the
artefact instead of the arcs - and it collapses once the artefact moves to the other class.
"""

from __future__ import annotations

import numpy as np

KINDS = ("hot_pixel_column", "corner_stamp")
CORNERS = ("lower_left", "lower_right", "upper_left", "upper_right")


def noise_level(images: np.ndarray) -> np.ndarray:
    """(N, C) robust noise per image and band: 1.4826 MAD, falling back to the std, then 1."""
    images = np.asarray(images, dtype=np.float32)
    flat = images.reshape(images.shape[0], images.shape[1], -1)
    median = np.median(flat, axis=2, keepdims=True)
    sigma = 1.4826 * np.median(np.abs(flat - median), axis=2)
    spread = flat.std(axis=2)
    return np.where(sigma > 1e-8, sigma, np.where(spread > 1e-8, spread, 1.0)).astype(np.float32)


def column_mask(height: int, width: int, column: int, thickness: int = 1) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    mask[:, column : column + thickness] = True
    return mask


def stamp_mask(height: int, width: int, corner: str = "lower_left", arm: int | None = None,
               margin: int = 2) -> np.ndarray:
    """A "+" with arms of ``arm`` pixels (default ~H/12, at least 2) near ``corner`` (array row 0 is
    the bottom of a plot drawn with origin='lower')."""
    if corner not in CORNERS:
        raise ValueError(f"corner must be one of {CORNERS}, got {corner!r}")
    arm = max(2, min(height, width) // 12) if arm is None else int(arm)
    cy = margin + arm if corner.startswith("lower") else height - 1 - margin - arm
    cx = margin + arm if corner.endswith("left") else width - 1 - margin - arm
    if not (0 <= cy - arm and cy + arm < height and 0 <= cx - arm and cx + arm < width):
        raise ValueError(f"a stamp with arm {arm} does not fit a {height}x{width} image")
    mask = np.zeros((height, width), dtype=bool)
    mask[cy - arm : cy + arm + 1, cx] = True
    mask[cy, cx - arm : cx + arm + 1] = True
    return mask


def add_artefact(images: np.ndarray, mask_of_images_to_mark, rng: np.random.Generator,
                 kind: str = "hot_pixel_column", strength: float = 10.0, bands=None,
                 return_mask: bool = False, corner: str = "lower_left", thickness: int = 1,
                 avoid_centre: float = 1 / 3):
    """A new array: ``images`` (N, C, H, W) with an artefact added to the images marked True.

    kind
        ``"hot_pixel_column"``: a bad column of ``thickness`` pixels through the whole cutout at a
        random column (drawn from ``rng``, outside the central ``avoid_centre`` of the width so it
        does not sit on the lens); ``"corner_stamp"``: a "+" stamp near ``corner`` (or a random
        corner with ``corner="random"``).
    strength
        amplitude in units of each image's noise level (per band).
    bands
        band indices that get the artefact (default: all).
    return_mask
        also return the (N, H, W) boolean artefact masks (all False for unmarked images).

    Unmarked images are returned unchanged; ``rng`` is only drawn for marked images, so the same
    seed gives the same artefacts.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    images = np.array(images, dtype=np.float32, copy=True)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
    n, c, h, w = images.shape
    mark = np.asarray(mask_of_images_to_mark, dtype=bool)
    if mark.shape != (n,):
        raise ValueError(f"mask_of_images_to_mark must have shape ({n},), got {mark.shape}")
    band_idx = np.arange(c) if bands is None else np.atleast_1d(np.asarray(bands, dtype=int))
    sigma = noise_level(images)
    masks = np.zeros((n, h, w), dtype=bool)
    lo, hi = int(np.floor(w * (0.5 - avoid_centre / 2))), int(np.ceil(w * (0.5 + avoid_centre / 2)))
    allowed = np.array([x for x in range(w - thickness + 1) if x + thickness <= lo or x >= hi])
    if kind == "hot_pixel_column" and allowed.size == 0:
        allowed = np.arange(w - thickness + 1)
    for i in np.flatnonzero(mark):
        if kind == "hot_pixel_column":
            m = column_mask(h, w, int(rng.choice(allowed)), thickness)
        else:
            where = CORNERS[int(rng.integers(4))] if corner == "random" else corner
            m = stamp_mask(h, w, where)
        masks[i] = m
        for b in band_idx:
            images[i, b][m] += strength * sigma[i, b]
    return (images, masks) if return_mask else images
