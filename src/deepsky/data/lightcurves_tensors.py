"""From observation tables to padded tensors, and from those to what the sequence models eat.

Stored per object (raw, before any normalisation): days since the first observation, days since
the previous one, the band one-hot, flux and flux error. The model features are computed per
batch from the observations a model may see (`encode`): a light curve cut short for early
classification is normalised by its own brightest point, never by one still to come.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from deepsky.data.lightcurves import OBSERVATION_COLUMNS, OBSERVATIONS
from deepsky.models.lightcurves_nets import Sequences, padding_mask

TIME_UNIT = 100.0  # days; the first feature is time / TIME_UNIT (the transformer's time encoding undoes it)


def n_features(n_bands: int) -> int:
    return 2 + n_bands + 3


def check_observations(table: pd.DataFrame, source: str, bands: list[str]) -> None:
    missing = [c for c in OBSERVATION_COLUMNS if c not in table]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing} (need {', '.join(OBSERVATION_COLUMNS)})")
    unknown = sorted(set(table["band"].astype(str)) - set(bands))
    if unknown:
        raise ValueError(f"{source}: band(s) {unknown} unknown to the model (bands {bands})")
    values = table[["time", "flux", "flux_err"]].to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise ValueError(f"{source}: non-finite time, flux or flux_err")
    if (table["flux_err"] <= 0).any():
        raise ValueError(f"{source}: flux_err must be positive")


def raw_sequences(table: pd.DataFrame, objects, bands: list[str]) -> list[np.ndarray]:
    """Per object (in the order of `objects`), its observations sorted by time as raw columns."""
    band_index = {b: k for k, b in enumerate(bands)}
    table = table.sort_values(["object", "time"], kind="stable")
    groups = dict(tuple(table.groupby("object", sort=False)))
    out = []
    for obj in objects:
        if obj not in groups:
            raise ValueError(f"object {obj!r} has no observations")
        rows = groups[obj]
        t = rows["time"].to_numpy(dtype=float)
        onehot = np.eye(len(bands))[[band_index[b] for b in rows["band"].astype(str)]]
        columns = [t - t[0], np.diff(t, prepend=t[0]), *onehot.T, rows["flux"].to_numpy(float), rows["flux_err"].to_numpy(float)]
        out.append(np.stack(columns, 1).astype(np.float32))
    return out


def pad(sequences: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """(raw (N, L_max, C) zero-padded, lengths (N,))."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    width = sequences[0].shape[1] if sequences else 0
    raw = torch.zeros(len(sequences), int(lengths.max()) if len(sequences) else 0, width)
    for k, s in enumerate(sequences):
        raw[k, : len(s)] = torch.from_numpy(s)
    return raw, lengths


def load_objects(dataset_dir, index, bands: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    table = pd.read_parquet(Path(dataset_dir) / OBSERVATIONS, filters=[("object", "in", list(map(int, index)))])
    return pad(raw_sequences(table, index, bands))


def encode(raw: torch.Tensor, lengths: torch.Tensor) -> Sequences:
    """Model features of the first `lengths` observations: time/100 d, log(1 + gap)/3, band one-hot,
    flux and error over the brightest |flux| seen in the same band, and log10 of that band scale - 3
    (brightness and colours: 27.5 - 2.5 (3 + x) is its magnitude). Zero after each length.

    Per-band scales put a constant star at 1 in every band, so that variability shows directly."""
    mask = padding_mask(lengths, raw.shape[1])
    flux, err, onehot = raw[..., -2], raw[..., -1], raw[..., 2:-2] * mask[..., None]
    band_scale = (flux.abs()[..., None] * onehot).amax(1).clamp(min=1.0)  # (N, bands)
    scale = (onehot * band_scale[:, None, :]).sum(-1).clamp(min=1.0)  # (N, L): each observation's band
    values = torch.cat(
        [
            raw[..., :1] / TIME_UNIT,
            torch.log1p(raw[..., 1:2]) / 3.0,
            onehot,
            (flux / scale)[..., None],
            (err / scale).clamp(max=10.0)[..., None],
            (torch.log10(scale) - 3.0)[..., None],
        ],
        -1,
    )
    return Sequences(values * mask[..., None], lengths)


def truncate(raw: torch.Tensor, lengths: torch.Tensor, fraction) -> torch.Tensor:
    """Lengths after seeing only the first `fraction` (scalar or per sequence) of each light
    curve's time span; at least one observation."""
    fraction = torch.as_tensor(fraction, dtype=raw.dtype, device=raw.device)
    mask = padding_mask(lengths, raw.shape[1])
    span = raw[..., 0].masked_fill(~mask, 0.0).amax(1)
    seen = (raw[..., 0] <= (fraction * span)[:, None] + 1e-6) & mask
    return seen.sum(1).clamp(min=1)


def read_observation_files(inputs, bands: list[str]):
    """Light curves of observation Parquet files (or folders of them) for `deepsky predict`:
    (file of each object, object ids, raw sequences, errors as (file, message)). A file that
    cannot be used is named in the errors and skipped."""
    paths = []
    for item in map(Path, inputs):
        paths += sorted(item.rglob("*.parquet")) if item.is_dir() else [item]
    files, objects, sequences, errors = [], [], [], []
    for path in paths:
        try:
            if not path.exists():
                raise ValueError(f"{path}: no such file")
            try:
                table = pd.read_parquet(path)
            except Exception as exc:  # pyarrow raises several types for files that are not Parquet
                raise ValueError(f"{path}: not a Parquet file ({type(exc).__name__})") from None
            check_observations(table, str(path), bands)
            ids = list(pd.unique(table["object"]))
            sequences += raw_sequences(table, ids, bands)
        except ValueError as exc:
            errors.append((str(path), str(exc)))
            continue
        files += [str(path)] * len(ids)
        objects += ids
    return files, objects, sequences, errors
