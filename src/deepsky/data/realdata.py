"""Readers turning the real dataset archives into the project's in-memory format.

Every reader returns ``images`` (float32, ``(N, C, H, W)``, channels first),
``labels`` (int64, ``(N,)``) and a ``catalog`` (:class:`pandas.DataFrame`,
one row per image, in the same order, with an ``index`` column ``0..N-1``);
:func:`read_petimages` also returns a dict of counts for the dataset card.

Archives (see the download sources in the project configuration):

* Galaxy10 SDSS (``Galaxy10.h5``) and Galaxy10 DECaLS (``Galaxy10_DECals.h5``),
  Leung & Bovy, via astroNN: HDF5 with ``images`` ``(N, H, W, 3)`` uint8 and
  ``ans`` (labels 0-9); DECaLS also has ``ra``, ``dec``, ``redshift``,
  ``pxscale``.
* Microsoft's Kaggle cats-vs-dogs zip (``kagglecatsanddogs_5340.zip``):
  ``PetImages/Cat/*.jpg`` and ``PetImages/Dog/*.jpg`` (12 500 each) including
  empty files, files that are not JPEG and ``Thumbs.db``.
* Bologna Lens Finding Challenge 1.0, ground-based training set
  (``GroundBasedTraining.tar.gz``): ``GroundBasedTraining/classifications.csv``
  with columns ``ID, is_lens, Einstein_area, numb_pix_lensed_image,
  flux_lensed_image_in_sigma`` and per-band 101x101 FITS cutouts
  ``GroundBasedTraining/Public/Band{1..4}/imageSDSS_{R,I,G,U}-{ID}.fits``
  (Band1=R, Band2=I, Band3=G, Band4=U; masked pixels hold the value 100).
"""

from __future__ import annotations

import io
import os
import re
import tarfile
import warnings
import zipfile
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "RealDataError",
    "GALAXY10_SDSS_CLASSES",
    "GALAXY10_DECALS_CLASSES",
    "GALAXY10_SDSS_LECTURE_CLASSES",
    "GALAXY10_DECALS_LECTURE_CLASSES",
    "PETIMAGES_CLASSES",
    "BOLOGNA_GROUND_BANDS",
    "BOLOGNA_MASK_VALUE",
    "read_galaxy10",
    "read_petimages",
    "read_bologna_challenge",
]


class RealDataError(ValueError):
    """An archive does not have the expected layout or content."""


# --------------------------------------------------------------------------- Galaxy10

#: Galaxy10 SDSS label names (astroNN documentation, "Galaxy10 SDSS Dataset"), index = ``ans``.
GALAXY10_SDSS_CLASSES: tuple[str, ...] = (
    "Disk, Face-on, No Spiral",  # 0
    "Smooth, Completely round",  # 1
    "Smooth, in-between round",  # 2
    "Smooth, Cigar shaped",  # 3
    "Disk, Edge-on, Rounded Bulge",  # 4
    "Disk, Edge-on, Boxy Bulge",  # 5
    "Disk, Edge-on, No Bulge",  # 6
    "Disk, Face-on, Tight Spiral",  # 7
    "Disk, Face-on, Medium Spiral",  # 8
    "Disk, Face-on, Loose Spiral",  # 9
)

#: Galaxy10 DECaLS label names (henrysky/Galaxy10 README), index = ``ans``.
GALAXY10_DECALS_CLASSES: tuple[str, ...] = (
    "Disturbed Galaxies",  # 0
    "Merging Galaxies",  # 1
    "Round Smooth Galaxies",  # 2
    "In-between Round Smooth Galaxies",  # 3
    "Cigar Shaped Smooth Galaxies",  # 4
    "Barred Spiral Galaxies",  # 5
    "Unbarred Tight Spiral Galaxies",  # 6
    "Unbarred Loose Spiral Galaxies",  # 7
    "Edge-on Galaxies without Bulge",  # 8
    "Edge-on Galaxies with Bulge",  # 9
)

#: The lecture's three classes on Galaxy10 SDSS: completely round smooth
#: galaxies, the three edge-on disk classes (rounded / boxy / no bulge) and the
#: three face-on spirals (tight / medium / loose).
GALAXY10_SDSS_LECTURE_CLASSES: dict[str, list[int]] = {
    "round": [1],
    "edge_on": [4, 5, 6],
    "spiral": [7, 8, 9],
}

#: The same three classes on Galaxy10 DECaLS, whose classes were re-cut: round
#: smooth (2), edge-on without / with bulge (8, 9) and the face-on spirals:
#: barred (5), unbarred tight (6), unbarred loose (7).  (The SDSS face-on
#: spiral classes do not separate bars, so barred spirals belong to "spiral".)
GALAXY10_DECALS_LECTURE_CLASSES: dict[str, list[int]] = {
    "round": [2],
    "edge_on": [8, 9],
    "spiral": [5, 6, 7],
}

_GALAXY10_EXTRA_COLUMNS = ("ra", "dec", "redshift", "pxscale")


def _check_class_map(class_map: Mapping[str, Sequence[int]], n_source: int = 10) -> dict[str, list[int]]:
    if not class_map:
        raise ValueError("class_map is empty")
    seen: dict[int, str] = {}
    out: dict[str, list[int]] = {}
    for name, ids in class_map.items():
        if isinstance(ids, (int, np.integer)):
            ids = [int(ids)]
        ids = [int(i) for i in ids]
        if not ids:
            raise ValueError(f"class_map[{name!r}] is empty")
        for i in ids:
            if not 0 <= i < n_source:
                raise ValueError(f"class_map[{name!r}] has label {i}, outside 0-{n_source - 1}")
            if i in seen:
                raise ValueError(f"label {i} is mapped to both {seen[i]!r} and {name!r}")
            seen[i] = name
        out[str(name)] = ids
    return out


def _resize_square(img, size: int, crop: int | None = None):
    """Center-crop a PIL image to a square (of side ``crop`` if given), then resize it to ``size``."""
    from PIL import Image

    w, h = img.size
    if w != h or (crop and crop < min(w, h)):
        side = min(w, h, crop or min(w, h))
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)  # antialiased when shrinking
    return img


def read_galaxy10(
    h5_path: str | os.PathLike,
    class_map: Mapping[str, Sequence[int]],
    *,
    image_size: int | None = None,
    crop: int | None = None,
    source_class_names: Sequence[str] | None = None,
    rows_per_read: int | None = None,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Read a Galaxy10 (SDSS or DECaLS) HDF5 file, keeping the classes of ``class_map``.

    ``class_map`` maps our class names, in label order, to Galaxy10 label ids
    (e.g. :data:`GALAXY10_SDSS_LECTURE_CLASSES`); images of unmapped Galaxy10
    classes are left out.  Images are scaled to [0, 1], channels first; with
    ``image_size`` they are center-cropped/resized (bilinear, antialiased) to
    ``image_size`` x ``image_size`` (useful for the 256x256 DECaLS images). ``crop`` first keeps
    the central ``crop`` pixels: 104 DECaLS pixels (0.262") span the 27" of a 69-pixel SDSS
    cutout (0.396"), so that both surveys show the same field.

    The catalog has ``index`` (row in the output), ``source_index`` (row in
    the HDF5 file), ``label``, ``class_name``, ``source_label`` (Galaxy10 id),
    ``source_class_name`` (from ``source_class_names``; by default the DECaLS
    names for files with ``pxscale`` or images of 256 pixels or more, else the
    SDSS names) and ``ra``/``dec``/``redshift``/``pxscale``
    where the file has them.  The HDF5 file is read in slabs, so only the kept
    images are ever held in memory.
    """
    import h5py

    path = Path(h5_path)
    cmap = _check_class_map(class_map)
    names = list(cmap)
    lut = np.full(10, -1, dtype=np.int64)
    for label, ids in enumerate(cmap.values()):
        lut[ids] = label

    if not path.is_file():
        raise FileNotFoundError(f"Galaxy10 file not found: {path}")
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise RealDataError(f"{path}: not a readable HDF5 file ({exc})") from exc
    with fh:
        for key in ("images", "ans"):
            if key not in fh or not isinstance(fh[key], h5py.Dataset):
                raise RealDataError(
                    f"{path}: no dataset {key!r} (found: {sorted(fh.keys())}); "
                    "expected the Galaxy10 layout with 'images' (N, H, W, 3) and 'ans' (N,)"
                )
        ds = fh["images"]
        if ds.ndim != 4 or ds.shape[-1] != 3:
            raise RealDataError(f"{path}: 'images' has shape {ds.shape}, expected (N, H, W, 3)")
        n, h, w, _ = ds.shape
        ans = fh["ans"]
        if ans.shape != (n,):
            raise RealDataError(f"{path}: 'ans' has shape {ans.shape}, expected ({n},) like 'images'")
        source = np.asarray(ans[()])
        if not (np.issubdtype(source.dtype, np.integer) or np.all(np.mod(source, 1) == 0)):
            raise RealDataError(f"{path}: 'ans' holds non-integer labels")
        source = source.astype(np.int64)
        bad = (source < 0) | (source > 9)
        if bad.any():
            raise RealDataError(
                f"{path}: {int(bad.sum())} label(s) in 'ans' outside 0-9, "
                f"e.g. {sorted(set(source[bad].tolist()))[:5]}"
            )
        if source_class_names is None:
            decals = h >= 256 or "pxscale" in fh
            source_names = GALAXY10_DECALS_CLASSES if decals else GALAXY10_SDSS_CLASSES
        else:
            source_names = tuple(source_class_names)
            if len(source_names) != 10:
                raise ValueError("source_class_names must have 10 names")

        keep = np.flatnonzero(lut[source] >= 0)
        if crop and not image_size:
            image_size = min(crop, h, w)
        out_h, out_w = (image_size, image_size) if image_size else (h, w)
        images = np.empty((len(keep), 3, out_h, out_w), dtype=np.float32)
        if rows_per_read is None:
            rows_per_read = max(1, (64 << 20) // max(1, h * w * 3))
        pos = 0
        for lo in range(0, n, rows_per_read):
            hi = min(n, lo + rows_per_read)
            sel = keep[(keep >= lo) & (keep < hi)]
            if sel.size == 0:
                continue
            slab = np.asarray(ds[lo:hi])[sel - lo]
            if slab.dtype != np.uint8:
                raise RealDataError(f"{path}: 'images' has dtype {slab.dtype}, expected uint8")
            if image_size:
                from PIL import Image

                slab = np.stack([np.asarray(_resize_square(Image.fromarray(im), image_size, crop)) for im in slab])
            images[pos : pos + len(sel)] = slab.transpose(0, 3, 1, 2)
            pos += len(sel)
        images /= 255.0

        catalog = pd.DataFrame(
            {
                "index": np.arange(len(keep), dtype=np.int64),
                "source_index": keep.astype(np.int64),
                "label": lut[source[keep]],
                "class_name": [names[i] for i in lut[source[keep]]],
                "source_label": source[keep],
                "source_class_name": [source_names[i] for i in source[keep]],
            }
        )
        for col in _GALAXY10_EXTRA_COLUMNS:
            if col in fh and isinstance(fh[col], h5py.Dataset) and fh[col].shape == (n,):
                catalog[col] = np.asarray(fh[col][()])[keep]
    labels = catalog["label"].to_numpy(dtype=np.int64)
    return images, labels, catalog


# --------------------------------------------------------------------------- PetImages

#: (folder in the zip, our class name); label = position.
PETIMAGES_CLASSES: tuple[tuple[str, str], ...] = (("Cat", "cat"), ("Dog", "dog"))
_PET_MEMBER = re.compile(r"(?:^|/)PetImages/([^/]+)/([^/]+)$")
_DROP_REASONS = ("not_jpg_name", "empty", "not_jpeg", "corrupt")


def _decode_jpeg(data: bytes, size: int):
    """Decode JPEG bytes to a ``size`` x ``size`` RGB uint8 array, or return the drop reason."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        return "empty"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Corrupt EXIF data", "Possibly corrupt ..." etc.
            with Image.open(io.BytesIO(data)) as img:
                if img.format != "JPEG":
                    return "not_jpeg"
                img.draft("RGB", (size, size))  # DCT-domain downscale: fast, never below size
                img.load()  # full decode: raises on truncated / corrupt data
                rgb = img.convert("RGB")
        return np.asarray(_resize_square(rgb, size), dtype=np.uint8)
    except UnidentifiedImageError:
        return "corrupt"
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError, MemoryError):
        return "corrupt"
    except Exception:  # noqa: BLE001 - Pillow plugins raise odd things (struct.error, IndexError)
        return "corrupt"


def read_petimages(
    zip_path: str | os.PathLike,
    *,
    n_train: int,
    n_test: int,
    image_size: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, dict[str, Any]]:
    """Read a balanced, seeded sample of Microsoft's cats-vs-dogs zip.

    Every file under ``PetImages/Cat`` and ``PetImages/Dog`` is checked first:
    names not ending in ``.jpg``/``.jpeg`` (``Thumbs.db``), empty files, files
    Pillow opens as another format (PNG/GIF/BMP renamed ``.jpg``) and files
    that fail a full decode are dropped and counted.  From the valid files,
    ``n_train // 2`` + ``n_test // 2`` per class are drawn with
    ``numpy.random.default_rng(seed)`` (lecture: 8000 + 2000), decoded again,
    center-cropped to a square and resized to ``image_size``.  Files are
    decoded one at a time, so no more than one full-size image is ever held.

    Returns ``images`` (float32 ``(N, 3, S, S)`` in [0, 1], the ``trainval``
    rows first, then ``test``, shuffled within each), ``labels`` (cat=0,
    dog=1), ``catalog`` (``index, label, class_name, member_name, split``)
    and ``counts``::

        {"read": files seen in the class folders,
         "dropped": {"not_jpg_name": .., "empty": .., "not_jpeg": .., "corrupt": ..},
         "dropped_total": .., "valid": {"cat": .., "dog": ..},
         "used": {"cat": .., "dog": ..},
         "used_trainval": {"cat": .., "dog": ..}, "used_test": {"cat": .., "dog": ..}}
    """
    path = Path(zip_path)
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if value < 0 or value % 2:
            raise ValueError(f"{name}={value}: must be a non-negative even number (balanced classes)")
    if n_train + n_test == 0:
        raise ValueError("n_train + n_test must be > 0")
    if image_size < 1:
        raise ValueError("image_size must be >= 1")
    if not path.is_file():
        raise FileNotFoundError(f"PetImages zip not found: {path}")

    folder_label = {folder: label for label, (folder, _) in enumerate(PETIMAGES_CLASSES)}
    class_names = [name for _, name in PETIMAGES_CLASSES]
    dropped: Counter[str] = Counter({r: 0 for r in _DROP_REASONS})
    valid: list[list[str]] = [[] for _ in PETIMAGES_CLASSES]
    n_read = 0
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise RealDataError(f"{path}: not a zip file ({exc})") from exc
    with zf:
        members: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            if info.is_dir():
                continue
            m = _PET_MEMBER.search(info.filename)
            if not m or m.group(1) not in folder_label:
                continue
            n_read += 1
            label = folder_label[m.group(1)]
            if PurePosixPath(m.group(2)).suffix.lower() not in (".jpg", ".jpeg"):
                dropped["not_jpg_name"] += 1
                continue
            if info.file_size == 0:
                dropped["empty"] += 1
                continue
            result = _decode_jpeg(zf.read(info), min(image_size, 64))
            if isinstance(result, str):
                dropped[result] += 1
                continue
            valid[label].append(info.filename)
            members[info.filename] = info
        if n_read == 0:
            raise RealDataError(
                f"{path}: no files under PetImages/Cat or PetImages/Dog; is this kagglecatsanddogs_*.zip?"
            )

        per_train, per_test = n_train // 2, n_test // 2
        for label, names in enumerate(valid):
            if len(names) < per_train + per_test:
                raise RealDataError(
                    f"{path}: only {len(names)} valid {class_names[label]} images, "
                    f"{per_train + per_test} needed ({per_train} trainval + {per_test} test)"
                )
        rng = np.random.default_rng(seed)
        chosen: dict[str, list[tuple[str, int]]] = {"trainval": [], "test": []}
        for label, names in enumerate(valid):
            names = sorted(names)
            perm = rng.permutation(len(names))
            chosen["trainval"] += [(names[i], label) for i in perm[:per_train]]
            chosen["test"] += [(names[i], label) for i in perm[per_train : per_train + per_test]]
        rows: list[tuple[str, int, str]] = []
        for split in ("trainval", "test"):
            order = rng.permutation(len(chosen[split]))
            rows += [(*chosen[split][i], split) for i in order]

        images = np.empty((len(rows), 3, image_size, image_size), dtype=np.float32)
        position = {name: i for i, (name, _, _) in enumerate(rows)}
        for name in sorted(position, key=lambda n: members[n].header_offset):  # archive order
            arr = _decode_jpeg(zf.read(members[name]), image_size)
            if isinstance(arr, str):  # cannot happen for a file that decoded before
                raise RealDataError(f"{path}: {name} decoded in the first pass but not now ({arr})")
            images[position[name]] = arr.transpose(2, 0, 1)
        images /= 255.0

    labels = np.array([label for _, label, _ in rows], dtype=np.int64)
    catalog = pd.DataFrame(
        {
            "index": np.arange(len(rows), dtype=np.int64),
            "label": labels,
            "class_name": [class_names[label] for label in labels],
            "member_name": [name for name, _, _ in rows],
            "split": [split for _, _, split in rows],
        }
    )

    def per_class(mask) -> dict[str, int]:
        return {c: int(((labels == i) & mask).sum()) for i, c in enumerate(class_names)}

    split = catalog["split"].to_numpy()
    counts: dict[str, Any] = {
        "read": n_read,
        "dropped": {r: int(dropped[r]) for r in _DROP_REASONS},
        "dropped_total": int(sum(dropped.values())),
        "valid": {c: len(valid[i]) for i, c in enumerate(class_names)},
        "used": per_class(np.ones(len(labels), dtype=bool)),
        "used_trainval": per_class(split == "trainval"),
        "used_test": per_class(split == "test"),
    }
    return images, labels, catalog, counts


# --------------------------------------------------------------------------- Bologna challenge

#: (folder, filter) of the four bands of the ground-based set, in channel order.
BOLOGNA_GROUND_BANDS: tuple[tuple[str, str], ...] = (
    ("Band1", "R"),
    ("Band2", "I"),
    ("Band3", "G"),
    ("Band4", "U"),
)
#: Value of masked pixels in the ground-based cutouts (as handled by CMU DeepLens).
BOLOGNA_MASK_VALUE = 100.0
_BOLOGNA_FITS = re.compile(r"(?:^|/)Band(\d+)/image([A-Za-z0-9]*)_([A-Za-z]+)-(\d+)\.fits?$", re.IGNORECASE)


def _read_fits_bytes(data: bytes, what: str) -> np.ndarray:
    from astropy.io import fits

    try:
        with fits.open(io.BytesIO(data), memmap=False) as hdul:
            for hdu in hdul:
                if getattr(hdu, "data", None) is not None:
                    arr = np.asarray(hdu.data, dtype=np.float32)
                    break
            else:
                raise RealDataError(f"{what}: FITS file without image data")
    except RealDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - astropy raises OSError/ValueError/TypeError
        raise RealDataError(f"{what}: unreadable FITS ({exc})") from exc
    arr = np.squeeze(arr)
    if arr.ndim != 2:
        raise RealDataError(f"{what}: FITS image has shape {arr.shape}, expected 2-D")
    return arr


def read_bologna_challenge(
    tar_path: str | os.PathLike,
    *,
    label_column: str = "is_lens",
    mask_fill: float | None = 0.0,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Read the Bologna Lens Finding Challenge 1.0 ground-based training tarball.

    The archive (``.tar``, ``.tar.gz``, ...) is streamed once.  It must hold a
    ``classifications.csv`` (anywhere) with an ``ID`` column and
    ``label_column``, and for every ID four FITS cutouts
    ``Band{k}/image*_{F}-{ID}.fits`` with k = 1..4 (R, I, G, U).

    ``labels`` = ``(is_lens != 0)``: 1 for a lens, 0 otherwise.  ``is_lens``
    is the challenge's own truth flag; the other CSV columns
    (``Einstein_area``, ``numb_pix_lensed_image``, ``flux_lensed_image_in_sigma``)
    describe the lensed source and are copied to the catalog.

    ``images`` are float32 ``(N, 4, 101, 101)``, channels Band1..Band4, in raw
    flux units (no normalisation).  Pixels equal to :data:`BOLOGNA_MASK_VALUE`
    (masked) and non-finite pixels are set to ``mask_fill`` unless it is
    ``None``; the catalog counts them per image (``n_masked``,
    ``n_nonfinite``).  Rows follow the CSV order; the catalog has ``index``,
    ``ID``, ``label``, the CSV columns, ``n_masked`` and ``n_nonfinite``.
    """
    path = Path(tar_path)
    if not path.is_file():
        raise FileNotFoundError(f"challenge tarball not found: {path}")
    n_bands = len(BOLOGNA_GROUND_BANDS)
    cubes: dict[int, np.ndarray] = {}
    have: dict[int, np.ndarray] = {}
    shape: tuple[int, int] | None = None
    csv_bytes: bytes | None = None
    csv_name = ""
    try:
        tf = tarfile.open(path, mode="r|*")
    except tarfile.TarError as exc:
        raise RealDataError(f"{path}: not a (compressed) tar archive ({exc})") from exc
    with tf:
        try:
            for member in tf:
                if not member.isfile():
                    continue
                base = PurePosixPath(member.name).name
                if base.lower() == "classifications.csv":
                    csv_bytes, csv_name = tf.extractfile(member).read(), member.name
                    continue
                m = _BOLOGNA_FITS.search(member.name)
                if not m:
                    continue
                band = int(m.group(1)) - 1
                if not 0 <= band < n_bands:
                    raise RealDataError(f"{path}: {member.name}: unexpected band number {band + 1}")
                expected_filter = BOLOGNA_GROUND_BANDS[band][1]
                if m.group(3).upper() != expected_filter:
                    raise RealDataError(
                        f"{path}: {member.name}: filter {m.group(3)} in Band{band + 1}, "
                        f"expected {expected_filter}"
                    )
                obj = int(m.group(4))
                arr = _read_fits_bytes(tf.extractfile(member).read(), f"{path}: {member.name}")
                if shape is None:
                    shape = arr.shape
                elif arr.shape != shape:
                    raise RealDataError(
                        f"{path}: {member.name} has shape {arr.shape}, other cutouts have {shape}"
                    )
                if obj not in cubes:
                    cubes[obj] = np.zeros((n_bands, *shape), dtype=np.float32)
                    have[obj] = np.zeros(n_bands, dtype=bool)
                if have[obj][band]:
                    raise RealDataError(f"{path}: {member.name}: a second Band{band + 1} cutout of ID {obj}")
                cubes[obj][band] = arr
                have[obj][band] = True
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise RealDataError(f"{path}: damaged archive ({exc})") from exc

    if csv_bytes is None:
        raise RealDataError(f"{path}: no classifications.csv in the archive")
    try:
        table = pd.read_csv(io.BytesIO(csv_bytes), skipinitialspace=True)
    except Exception as exc:  # noqa: BLE001
        raise RealDataError(f"{path}: {csv_name}: unreadable CSV ({exc})") from exc
    table.columns = [str(c).strip() for c in table.columns]
    lower = {c.lower(): c for c in table.columns}
    if "id" not in lower or label_column.lower() not in lower:
        raise RealDataError(
            f"{path}: {csv_name} needs columns 'ID' and {label_column!r}; has {list(table.columns)}"
        )
    id_col, lab_col = lower["id"], lower[label_column.lower()]
    ids = pd.to_numeric(table[id_col], errors="coerce")
    if ids.isna().any() or (ids % 1 != 0).any():
        raise RealDataError(f"{path}: {csv_name}: non-integer IDs")
    ids = ids.astype(np.int64).to_numpy()
    if len(np.unique(ids)) != len(ids):
        raise RealDataError(f"{path}: {csv_name}: duplicated IDs")
    flags = pd.to_numeric(table[lab_col], errors="coerce")
    if flags.isna().any():
        raise RealDataError(f"{path}: {csv_name}: column {lab_col!r} has non-numeric values")

    missing = [(i, [k + 1 for k in range(n_bands) if i not in have or not have[i][k]]) for i in ids]
    missing = [(i, bands) for i, bands in missing if bands]
    if missing:
        sample = ", ".join(f"ID {i} (Band{','.join(map(str, b))})" for i, b in missing[:5])
        raise RealDataError(f"{path}: {len(missing)} ID(s) of {csv_name} lack cutouts: {sample}")

    h, w = shape if shape is not None else (0, 0)
    images = np.empty((len(ids), n_bands, h, w), dtype=np.float32)
    n_masked = np.zeros(len(ids), dtype=np.int64)
    n_nonfinite = np.zeros(len(ids), dtype=np.int64)
    for row, obj in enumerate(ids):
        cube = cubes.pop(int(obj))  # free as we go: peak memory ~ one copy of the data
        masked = cube == BOLOGNA_MASK_VALUE
        nonfinite = ~np.isfinite(cube)
        n_masked[row], n_nonfinite[row] = int(masked.sum()), int(nonfinite.sum())
        if mask_fill is not None:
            cube[masked | nonfinite] = mask_fill
        images[row] = cube

    labels = (flags.to_numpy() != 0).astype(np.int64)
    catalog = table.copy()
    if "label" in catalog.columns:
        catalog = catalog.rename(columns={"label": "csv_label"})
    catalog[id_col] = ids
    catalog = catalog.rename(columns={id_col: "ID"})
    catalog.insert(0, "index", np.arange(len(ids), dtype=np.int64))
    catalog.insert(2, "label", labels)
    catalog["n_masked"] = n_masked
    catalog["n_nonfinite"] = n_nonfinite
    return images, labels, catalog
