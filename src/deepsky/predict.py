"""Score new cutouts with a trained model: FITS files (or folders of them) -> CSV of scores.

A file that cannot be scored (not FITS, wrong shape or band count, NaNs) is reported with its
name and skipped; the others are still scored.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import torch

from deepsky.data.fits_io import CutoutError, read_cutout
from deepsky.data.tensors import asinh_stretch
from deepsky.models_io import load_model
from deepsky.train import pick_device, predict

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz")


def expand_inputs(inputs: list[str | Path]) -> list[Path]:
    files = []
    for item in map(Path, inputs):
        if item.is_dir():
            files += sorted(p for p in item.rglob("*") if p.is_file() and p.name.lower().endswith(FITS_SUFFIXES))
        else:
            files.append(item)
    return files


def score_files(model_path, inputs, batch_size: int = 128, device: str = "auto"):
    """Return (rows of (file, score or per-class scores), errors of (file, message))."""
    dev = pick_device(device)
    model, meta = load_model(model_path, dev)
    files = expand_inputs(inputs)
    good, arrays, errors = [], [], []
    for path in files:
        try:
            if not path.exists():
                raise CutoutError(f"{path}: no such file")
            arrays.append(read_cutout(path, meta["in_channels"], meta["image_size"]))
            good.append(path)
        except CutoutError as exc:
            errors.append((str(path), str(exc)))
    rows = []
    if arrays:
        x = torch.from_numpy(asinh_stretch(np.stack(arrays)))
        _, scores = predict(model, x, dev, batch_size)
        for path, score in zip(good, scores.numpy()):
            rows.append((str(path), score))
    return rows, errors, meta


def write_scores(rows, meta, out) -> None:
    names = meta["class_names"]
    writer = csv.writer(out)
    if meta["num_outputs"] == 1:
        writer.writerow(["file", f"score_{names[1]}"])
        writer.writerows((path, f"{float(s):.6f}") for path, s in rows)
    else:
        writer.writerow(["file", "predicted"] + [f"p_{n}" for n in names])
        writer.writerows([path, names[int(np.argmax(s))]] + [f"{float(v):.6f}" for v in s] for path, s in rows)


def run(model: str, inputs: list[str], output: str | None, batch_size: int, device: str) -> int:
    rows, errors, meta = score_files(model, inputs, batch_size, device)
    for _, message in errors:
        print(f"error: {message}", file=sys.stderr)
    if output:
        with open(output, "w", newline="") as handle:
            write_scores(rows, meta, handle)
    else:
        write_scores(rows, meta, sys.stdout)
    print(f"scored {len(rows)} file(s), {len(errors)} could not be scored", file=sys.stderr)
    if not rows and errors:
        return 2
    return 1 if errors else 0
