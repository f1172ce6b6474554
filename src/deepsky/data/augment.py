"""Augmentation as a stage: seeded copies of train+validation images only (never test).

A lens finder should not care about the orientation of the sky, so each copy draws one of the
8 symmetries of the square (dihedral group D4), a small shift, and optionally extra noise.
Training for fold k keeps only the copies whose source image is in its training folds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm import tqdm

from deepsky.data.split import TRAINVAL


def dihedral(image: np.ndarray, k: int) -> np.ndarray:
    """k in 0..7: rotate by 90*(k % 4) degrees, then mirror left-right if k >= 4."""
    out = np.rot90(image, k % 4, axes=(-2, -1))
    if k >= 4:
        out = out[..., ::-1]
    return out


def shift(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Translate by whole pixels, filling the uncovered edge by reflection (no wrap-around)."""
    if dy == 0 and dx == 0:
        return image
    pad = max(abs(dy), abs(dx))
    padded = np.pad(image, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    h, w = image.shape[-2:]
    return padded[:, pad - dy : pad - dy + h, pad - dx : pad - dx + w]


def background_sigma(image: np.ndarray) -> np.ndarray:
    """Per-band noise level from the median absolute deviation (robust to the source)."""
    flat = image.reshape(image.shape[0], -1)
    mad = np.median(np.abs(flat - np.median(flat, axis=1, keepdims=True)), axis=1)
    return 1.4826 * mad


def augment_one(image: np.ndarray, rng: np.random.Generator, settings: dict) -> tuple[np.ndarray, dict]:
    if settings.get("dihedral", True):
        k = int(rng.integers(8))
    else:  # pictures with an up and a down: at most a left-right mirror (k = 4)
        k = 4 * int(rng.integers(2)) if settings.get("mirror", False) else 0
    max_shift = int(settings.get("max_shift", 0))
    dy, dx = (int(v) for v in rng.integers(-max_shift, max_shift + 1, size=2)) if max_shift else (0, 0)
    out = shift(dihedral(image, k), dy, dx)
    noise = float(settings.get("noise_sigma", 0.0))
    if noise > 0:
        sigma = background_sigma(image)[:, None, None]
        out = out + rng.normal(size=out.shape) * noise * sigma
    return np.ascontiguousarray(out, dtype=np.float32), {"dihedral": k, "dy": dy, "dx": dx}


def augment_dataset(images: np.ndarray, split: pd.DataFrame, settings: dict, seed: int):
    """Return (augmented images, catalog with source_index) for every train+validation image."""
    copies = int(settings.get("copies", 0))
    sources = split.loc[split["split"] == TRAINVAL, ["index", "label"]].to_numpy()
    n = len(sources) * copies
    out = np.empty((n,) + images.shape[1:], dtype=np.float32)
    rows = []
    for i, (index, label) in enumerate(tqdm(sources, desc="augment", unit="img", mininterval=2)):
        for copy in range(copies):
            rng = np.random.default_rng(np.random.SeedSequence([seed, 3, int(index), copy]))
            position = i * copies + copy
            out[position], info = augment_one(np.asarray(images[index]), rng, settings)
            rows.append({"aug_index": position, "source_index": int(index), "label": int(label), "copy": copy, **info})
    catalog = pd.DataFrame(rows, columns=["aug_index", "source_index", "label", "copy", "dihedral", "dy", "dx"])
    return out, catalog
