"""Predict with a trained model on new cutouts: FITS files (or folders of them) -> CSV.
Light-curve models (task sequence_classification) read observation Parquet files instead, and
photometric-redshift models on photometry read catalogue rows (Parquet, CSV or FITS tables with
mag_<band> columns; one output row per catalogue row, labelled file#index).

What is written per file depends on the model's task: `score_<class>` for a binary classifier,
the predicted class and `p_<class>` for several classes, `<target>_pred` and `<target>_sigma` for
a regression model. A file that cannot be used (not FITS, wrong shape or band count, NaNs) is
reported with its name and skipped; the others are still predicted.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import torch

from deepsky.data.fits_io import CutoutError, read_cutout
from deepsky.data.tensors import asinh_stretch
from deepsky.models_io import NotAModelError, load_model
from deepsky.tasks import task_from_meta
from deepsky.train import pick_device

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz")


def expand_inputs(inputs: list[str | Path]) -> list[Path]:
    files = []
    for item in map(Path, inputs):
        if item.is_dir():
            files += sorted(p for p in item.rglob("*") if p.is_file() and p.name.lower().endswith(FITS_SUFFIXES))
        else:
            files.append(item)
    return files


def predict_files(model_path, inputs, batch_size: int = 128, device: str = "auto"):
    """Return (files predicted, {column: values} of the task, errors of (file, message), meta)."""
    dev = pick_device(device)
    model, meta = load_model(model_path, dev)
    task = task_from_meta(meta)
    if task.name == "sequence_classification":
        return predict_lightcurves(model, task, meta, inputs, batch_size, dev)
    if getattr(task, "reads_tables", False):
        return predict_table_rows(model, task, meta, inputs, batch_size, dev)
    good, arrays, errors = read_cutouts(inputs, meta)
    predicted = {}
    if arrays:
        x = torch.from_numpy(asinh_stretch(np.stack(arrays)))
        with torch.inference_mode():
            predicted = task.predict(model, x, dev, batch_size)
    return good, predicted, errors, meta


def predict_lightcurves(model, task, meta, inputs, batch_size, device):
    """Light-curve models read observation Parquet files (object, time, band, flux, flux_err):
    one row per object, with its file and its `object` id."""
    from deepsky.data.lightcurves_tensors import pad, read_observation_files

    files, objects, sequences, errors = read_observation_files(inputs, task.bands)
    predicted = {}
    if sequences:
        with torch.inference_mode():
            predicted = {"object": objects, **task.predict(model, pad(sequences), device, batch_size)}
    return files, predicted, errors, meta


def predict_table_rows(model, task, meta, inputs, batch_size, device):
    """Photo-z models on photometry read catalogue tables: one prediction per row."""
    from deepsky.data.photoz import read_catalogue_rows

    labels, x, errors = read_catalogue_rows(inputs, task.table_inputs)
    predicted = {}
    if labels:
        with torch.inference_mode():
            predicted = task.predict(model, x, device, batch_size)
    return labels, predicted, errors, meta


def score_files(model_path, inputs, batch_size: int = 128, device: str = "auto"):
    """Classifier convenience: (rows of (file, P(class 1) or class probabilities), errors, meta)."""
    files, predicted, errors, meta = predict_files(model_path, inputs, batch_size, device)
    if "score" in predicted:
        values = predicted["score"]
    else:
        values = np.stack([predicted[f"p_{n}"] for n in meta["class_names"]], axis=1) if files else []
    return [(str(path), value) for path, value in zip(files, values)], errors, meta


def write_predictions(files, predicted, meta, out) -> None:
    columns = task_from_meta(meta).user_columns(predicted) if files else {}
    writer = csv.writer(out)
    writer.writerow(["file"] + list(columns))
    for k, path in enumerate(files):
        writer.writerow([str(path)] + [values[k] for values in columns.values()])


def read_cutouts(inputs, meta) -> tuple[list[Path], list[np.ndarray], list[tuple[str, str]]]:
    good, arrays, errors = [], [], []
    for path in expand_inputs(inputs):
        try:
            if not path.exists():
                raise CutoutError(f"{path}: no such file")
            arrays.append(read_cutout(path, meta["in_channels"], meta["image_size"]))
            good.append(path)
        except CutoutError as exc:
            errors.append((str(path), str(exc)))
    return good, arrays, errors


def run_own_outputs(model_path, inputs, output, batch_size: int, device: str):
    """Tasks with image or multi-row outputs (deblended FITS, detection tables) write them
    themselves; returns (number written, errors) or None for tasks that write one row per input."""
    dev = pick_device(device)
    model, meta = load_model(model_path, dev)
    task = task_from_meta(meta)
    if not task.writes_own_outputs:
        return None
    good, arrays, errors = read_cutouts(inputs, meta)
    written = 0
    if arrays:
        x = torch.from_numpy(asinh_stretch(np.stack(arrays)))
        with torch.inference_mode():
            written = task.write_user_outputs(model, good, x, output, dev, batch_size)
    return good, written, errors


def run(model: str, inputs: list[str], output: str | None, batch_size: int, device: str) -> int:
    try:
        own = run_own_outputs(model, inputs, output, batch_size, device)
        if own is None:
            files, predicted, errors, meta = predict_files(model, inputs, batch_size, device)
    except (NotAModelError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if own is not None:
        files, written, errors = own
        for _, message in errors:
            print(f"error: {message}", file=sys.stderr)
        print(f"predicted {len(files)} file(s) ({written} output(s)), {len(errors)} could not be used", file=sys.stderr)
        return 2 if not files and errors else (1 if errors else 0)
    for _, message in errors:
        print(f"error: {message}", file=sys.stderr)
    if output:
        with open(output, "w", newline="") as handle:
            write_predictions(files, predicted, meta, handle)
    else:
        write_predictions(files, predicted, meta, sys.stdout)
    print(f"predicted {len(files)} file(s), {len(errors)} could not be used", file=sys.stderr)
    if not files and errors:
        return 2
    return 1 if errors else 0
