"""FITS in and out: one cutout per file, bands along the first axis (NAXIS3)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from tqdm import tqdm


class CutoutError(ValueError):
    """A file that cannot be scored; the message names the file."""


def write_cutout(path: str | Path, image: np.ndarray, bands: list[str], meta: dict | None = None) -> None:
    header = fits.Header()
    header["BANDS"] = (",".join(bands), "bands along NAXIS3, in order")
    header["BUNIT"] = "count"
    for key, value in (meta or {}).items():
        if isinstance(value, float) and not math.isfinite(value):
            continue
        if isinstance(value, (int, float, str, np.integer, np.floating)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", fits.verify.VerifyWarning)
                header[f"HIERARCH DS {key}"[:60]] = value.item() if hasattr(value, "item") else value
    fits.PrimaryHDU(np.asarray(image, dtype=np.float32), header=header).writeto(path, overwrite=True)


def export_dataset(images: np.ndarray, catalog, bands: list[str], out_dir: str | Path) -> int:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = catalog.to_dict("records")
    for row in tqdm(records, desc="FITS export", unit="file", mininterval=2):
        index = int(row["index"])
        write_cutout(out_dir / f"cutout_{index:06d}.fits", images[index], bands, row)
    return len(records)


def read_cutout(path: str | Path, n_bands: int, image_size: int) -> np.ndarray:
    """Read one cutout as (C, H, W) float32; a 2-D image counts as one band."""
    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            hdu = next((h for h in hdul if h.data is not None), None)
            if hdu is None:
                raise CutoutError(f"{path}: no image data in any HDU")
            data = np.asarray(hdu.data, dtype=np.float32)
    except CutoutError:
        raise
    except (OSError, ValueError, TypeError) as exc:
        raise CutoutError(f"{path}: not a readable FITS file ({exc})") from exc
    if data.ndim == 2:
        data = data[None]
    expected = (n_bands, image_size, image_size)
    if data.shape != expected:
        raise CutoutError(f"{path}: shape {data.shape} but the model expects {expected} (bands, height, width)")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise CutoutError(f"{path}: {bad} NaN or infinite pixels")
    return data
