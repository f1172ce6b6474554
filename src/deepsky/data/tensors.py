"""From the on-disk format to normalised tensors for one fold (done once per job, not per batch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from deepsky.data import storage
from deepsky.data.split import fold_indices


def asinh_stretch(images: np.ndarray) -> np.ndarray:
    """Per image and band: subtract the median sky, divide by the robust noise, then asinh.

    The noise-normalised asinh keeps faint arcs visible next to bright lens galaxies and works
    the same for counts (simulations) and 8-bit pictures (Galaxy10, cats and dogs).
    """
    images = np.asarray(images, dtype=np.float32)
    flat = images.reshape(images.shape[0], images.shape[1], -1)
    median = np.median(flat, axis=2, keepdims=True)
    mad = np.median(np.abs(flat - median), axis=2, keepdims=True)
    scale = 1.4826 * mad
    # Flat or noiseless images have MAD 0: fall back to the overall spread.
    spread = flat.std(axis=2, keepdims=True)
    scale = np.where(scale > 1e-8, scale, np.where(spread > 1e-8, spread, 1.0))
    return np.arcsinh((flat - median) / scale).reshape(images.shape).astype(np.float32)


def to_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(asinh_stretch(images)), torch.from_numpy(np.array(labels, dtype=np.int64))


def load_fold(dataset_dir: str | Path, split_path: str | Path, fold: int, augmented_dir: str | Path | None = None,
              task=None):
    """Tensors for train (with augmented copies of training images if given), val and test.

    Targets are class labels, or what `task` (deepsky.tasks) reads from the catalog and encodes;
    a task learns its encoding (e.g. target scaling) from this fold's training images only.
    """
    dataset_dir = Path(dataset_dir)
    images = storage.load_images(dataset_dir / storage.IMAGES)
    columns = None if task is not None else ["index", "label"]
    catalog = pd.read_parquet(dataset_dir / storage.CATALOG, columns=columns).set_index("index", drop=False)
    targets = task.targets if task is not None else (lambda rows: rows["label"].to_numpy())
    split = pd.read_parquet(split_path)
    parts = {name: np.sort(idx) for name, idx in fold_indices(split, fold).items()}
    raw = {name: targets(catalog.loc[idx]) for name, idx in parts.items()}
    if task is not None:
        task.fit_encoding(raw["train"])
    encode = task.encode if task is not None else (lambda r: torch.from_numpy(np.array(r, dtype=np.int64)))
    out = {}
    for name, idx in parts.items():
        out[name] = (torch.from_numpy(asinh_stretch(images[idx])), encode(raw[name]))
        out[name + "_index"] = idx
    if augmented_dir is not None:
        aug_catalog = pd.read_parquet(Path(augmented_dir) / storage.CATALOG)
        keep = aug_catalog[aug_catalog["source_index"].isin(parts["train"])]
        if len(keep):
            aug_images = storage.load_images(Path(augmented_dir) / storage.IMAGES)
            x_aug = torch.from_numpy(asinh_stretch(aug_images[keep["aug_index"].to_numpy()]))
            # A copy carries its source's targets.
            y_aug = encode(targets(catalog.loc[keep["source_index"].to_numpy()]))
            x, y = out["train"]
            out["train"] = (torch.cat([x, x_aug]), torch.cat([y, y_aug]))
        out["train_augmented_sources"] = keep["source_index"].to_numpy()
    return out


def load_test_set(dataset_dir: str | Path, split_path: str | Path, limit: int | None = None, task=None):
    """(indices, raw images, targets) of the held-out test set, in index order: class labels, or
    the raw targets `task` reads from the catalog."""
    split = pd.read_parquet(split_path)
    index = np.sort(split.loc[split["split"] == "test", "index"].to_numpy())[:limit]
    columns = None if task is not None else ["index", "label"]
    catalog = pd.read_parquet(Path(dataset_dir) / storage.CATALOG, columns=columns).set_index("index", drop=False)
    images = storage.load_images(Path(dataset_dir) / storage.IMAGES)
    targets = task.targets(catalog.loc[index]) if task is not None else catalog.loc[index, "label"].to_numpy()
    return index, np.asarray(images[index]), targets
