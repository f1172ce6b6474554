"""The on-disk dataset format: images.npy (N, C, H, W float32, memory-mappable),
catalog.parquet (one row per image) and card.json (counts, checksum, provenance)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

IMAGES = "images.npy"
CATALOG = "catalog.parquet"
CARD = "card.json"


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, write) -> None:
    """Call write(tmp_path) then rename into place, so a crash never leaves a half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_images(path: str | Path, images: np.ndarray) -> None:
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")

    def write(tmp):
        with open(tmp, "wb") as handle:
            np.save(handle, np.ascontiguousarray(images, dtype=np.float32))

    atomic_write_bytes(Path(path), write)


def load_images(path: str | Path, mmap: bool = True) -> np.ndarray:
    return np.load(path, mmap_mode="r" if mmap else None)


def save_table(path: str | Path, table: pd.DataFrame) -> None:
    atomic_write_bytes(Path(path), lambda tmp: table.to_parquet(tmp, index=False))


def write_json(path: str | Path, payload: dict) -> None:
    text = json.dumps(payload, indent=2, sort_keys=False, default=_json_default)
    atomic_write_bytes(Path(path), lambda tmp: Path(tmp).write_text(text + "\n"))


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def read_card(dataset_dir: str | Path) -> dict:
    return json.loads((Path(dataset_dir) / CARD).read_text())


def class_names(dataset_dir: str | Path) -> list[str]:
    return list(read_card(dataset_dir)["class_names"])
