import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepsky.data import storage
from deepsky.data.split import make_split

ROOT = Path(__file__).resolve().parents[1]


def ring_dataset(out_dir: Path, n: int = 160, size: int = 32, bands: int = 3, seed: int = 0) -> Path:
    """A small on-disk dataset in the project format: class 1 has a faint ring (an Einstein
    ring stand-in) on top of a galaxy blob and noise; learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(yy, xx)
    labels = np.arange(n) % 2
    images = rng.normal(0, 1, (n, bands, size, size)).astype(np.float32)
    images += 20 * np.exp(-0.5 * (r / 2.5) ** 2)
    radius = rng.uniform(5, 9, n)
    rings = 4 * np.exp(-0.5 * ((r[None] - radius[:, None, None]) / 1.0) ** 2)
    images += (labels[:, None, None] * rings)[:, None]
    catalog = pd.DataFrame(
        {"index": np.arange(n), "label": labels, "class_name": np.where(labels, "lens", "non-lens"),
         "kind": np.where(labels, "lens", "galaxy"), "radius": radius}
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    storage.save_images(out_dir / storage.IMAGES, images)
    storage.save_table(out_dir / storage.CATALOG, catalog)
    storage.save_table(out_dir / "split.parquet", make_split(catalog, 0.2, 4, seed=seed))
    card = {"class_names": ["non-lens", "lens"], "bands": ["g", "r", "i"][:bands],
            "images_sha256": storage.sha256_file(out_dir / storage.IMAGES)}
    (out_dir / storage.CARD).write_text(json.dumps(card))
    return out_dir


def tiny_config(tmp_path: Path, data_name="rings", **training) -> dict:
    settings = {"epochs": 3, "batch_size": 32, "learning_rate": 1e-3, "patience": 10, "augment": False}
    settings.update(training)
    return {
        "seed": 1,
        "device": "cpu",
        "tracking": {"uri": f"sqlite:///{tmp_path}/mlflow.db", "artifact_root": str(tmp_path / "artifacts")},
        "datasets": {data_name: {"source": "simulate_lenses", "n_per_class": 80, "split": {"test_fraction": 0.2, "k_folds": 4}}},
        "experiments": {"tiny": {"dataset": data_name, "architectures": ["winning_cnn"], "training": settings}},
    }


@pytest.fixture
def rings(tmp_path):
    return ring_dataset(tmp_path / "data")
