"""Crowded multi-band fields of stars and galaxies with per-object truth (GalSim), for detection,
segmentation and classification with Mask R-CNN (lecture 002; Burke+2019 on DECam-like fields).

Each field: a random number of objects at uniform positions (overlaps happen naturally).
Galaxies are a de Vaucouleurs bulge plus an exponential disk (bulge fraction 0-0.6, sheared,
half-light radius shrinking with magnitude as in deep counts), stars are points; everything is
convolved with the field's Moffat PSF (FWHM 0.7-0.9", a little wider in bluer bands) on
DECam-like 0.263"/px pixels, plus Gaussian sky noise whose level gives a 5 sigma point-source
depth of `depth_mag`. Magnitudes follow Euclidean-like counts, dN/dm ~ 10^(0.3 m).

Truth per object comes from its own noiseless image: its mask is the pixels where it is above
`mask_sigma` times the sky noise in some band and, where objects overlap, brighter (in units of
the noise) than every other object there. Objects left with fewer than `min_area` pixels stay in
the image (as the faint sources of real fields) but not in the truth. Boxes enclose the masks
(pixel edges: x1, y1 exclusive). Classes: 1 star, 2 galaxy (0 is the background).
One seed per field: the fields do not depend on the number of worker processes.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

CLASS_NAMES = ("star", "galaxy")  # labels 1 and 2
MOFFAT_BETA = 3.5
ZERO_POINT = 30.0  # counts of a magnitude-30 source
BAND_COLOURS = {  # mean and spread of (band - r) for galaxies and stars
    "g": ((0.7, 0.3), (0.9, 0.4)),
    "r": ((0.0, 0.0), (0.0, 0.0)),
    "i": ((-0.35, 0.15), (-0.4, 0.2)),
    "z": ((-0.6, 0.2), (-0.6, 0.3)),
}
PSF_SCALE = {"g": 1.08, "r": 1.0, "i": 0.95, "z": 0.92}

DEFAULTS = {
    "image_size": 64,
    "pixel_scale": 0.263,
    "bands": ["g", "r", "i"],
    "min_objects": 8,
    "max_objects": 24,
    "star_fraction": 0.3,
    "mag_range": [18.0, 24.5],
    "depth_mag": 24.0,
    "psf_fwhm": [0.7, 0.9],
    "mask_sigma": 1.0,
    "min_area": 3,
}


def settings(simulation: dict | None) -> dict:
    cfg = {**DEFAULTS, **(simulation or {})}
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown simulation keys for simulate_fields: {sorted(unknown)}")
    missing = [b for b in cfg["bands"] if b not in BAND_COLOURS]
    if missing:
        raise ValueError(f"simulation.bands: no colours for {missing} (known: {sorted(BAND_COLOURS)})")
    return cfg


def sky_sigma(cfg: dict, fwhm: float) -> float:
    """Per-pixel noise giving a 5 sigma point-source detection at depth_mag (Gaussian PSF area)."""
    sigma_px = fwhm / 2.355 / cfg["pixel_scale"]
    flux = 10 ** (-0.4 * (cfg["depth_mag"] - ZERO_POINT))
    return float(flux / (5.0 * np.sqrt(4 * np.pi * sigma_px**2)))


def draw_magnitudes(n: int, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    """dN/dm ~ 10^(0.3 m) between lo and hi (inverse CDF)."""
    a, b = 10 ** (0.3 * lo), 10 ** (0.3 * hi)
    return np.log10(a + rng.uniform(size=n) * (b - a)) / 0.3


def plan_objects(cfg: dict, rng: np.random.Generator) -> pd.DataFrame:
    n = int(rng.integers(cfg["min_objects"], cfg["max_objects"] + 1))
    size = cfg["image_size"]
    is_star = rng.uniform(size=n) < cfg["star_fraction"]
    mag = draw_magnitudes(n, *cfg["mag_range"], rng)
    # Deep-field sizes: ~0.9" at r = 20, halving every 2.5 mag, 0.15 dex scatter.
    r_half = 0.9 * 10 ** (-0.12 * (mag - 20.0) + rng.normal(0, 0.15, n))
    g = np.clip(np.abs(rng.normal(0, 0.25, n)), 0, 0.7)
    angle = rng.uniform(0, np.pi, n)
    table = pd.DataFrame({
        "class": np.where(is_star, 1, 2),
        "x": rng.uniform(1, size - 2, n), "y": rng.uniform(1, size - 2, n),
        "mag_r": mag, "r_half_arcsec": np.where(is_star, 0.0, r_half),
        "bulge_fraction": np.where(is_star, 0.0, rng.uniform(0, 0.6, n)),
        "g1": np.where(is_star, 0.0, g * np.cos(2 * angle)), "g2": np.where(is_star, 0.0, g * np.sin(2 * angle)),
    })
    for band in cfg["bands"]:
        colours = np.array([BAND_COLOURS[band][0 if c == 2 else 1] for c in table["class"]])
        table[f"mag_{band}"] = mag + colours[:, 0] + colours[:, 1] * rng.standard_normal(n)
    return table


def render_field(cfg: dict, rng: np.random.Generator):
    """(noisy field (C, H, W), noiseless objects (n, C, H, W), noise (C, H, W), objects table, sigmas)."""
    import galsim

    gsparams = galsim.GSParams(folding_threshold=1e-2, maxk_threshold=3e-3)
    objects = plan_objects(cfg, rng)
    size, scale, bands = cfg["image_size"], cfg["pixel_scale"], cfg["bands"]
    fwhm = float(rng.uniform(*cfg["psf_fwhm"]))
    sigmas = np.array([sky_sigma(cfg, fwhm * PSF_SCALE[b]) for b in bands])
    stamps = np.zeros((len(objects), len(bands), size, size), np.float32)
    centre = (size - 1) / 2  # GalSim's true centre in 0-based pixel coordinates
    for k, row in enumerate(objects.itertuples(index=False)):
        if row[objects.columns.get_loc("class")] == 1:
            profile = galsim.DeltaFunction(gsparams=gsparams)
        else:
            hlr = row.r_half_arcsec
            disk = galsim.Exponential(half_light_radius=hlr, gsparams=gsparams)
            bulge = galsim.DeVaucouleurs(half_light_radius=0.5 * hlr, trunc=4.0 * hlr, gsparams=gsparams)
            profile = galsim.Add([(1 - row.bulge_fraction) * disk, row.bulge_fraction * bulge]).shear(g1=row.g1, g2=row.g2)
        offset = galsim.PositionD(row.x - centre, row.y - centre)
        for b, band in enumerate(bands):
            psf = galsim.Moffat(beta=MOFFAT_BETA, fwhm=fwhm * PSF_SCALE[band], gsparams=gsparams)
            flux = 10 ** (-0.4 * (getattr(row, f"mag_{band}") - ZERO_POINT))
            image = galsim.Convolve(profile.withFlux(flux), psf).drawImage(nx=size, ny=size, scale=scale, offset=offset)
            stamps[k, b] = image.array
    noise = (sigmas[:, None, None] * rng.standard_normal((len(bands), size, size))).astype(np.float32)
    field = stamps.sum(axis=0) + noise
    objects["psf_fwhm"] = fwhm
    objects["flux_r"] = 10 ** (-0.4 * (objects["mag_r"] - ZERO_POINT))
    return field.astype(np.float32), stamps, noise, objects, sigmas


def instance_map(stamps: np.ndarray, sigmas: np.ndarray, mask_sigma: float, min_area: int) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) int16 map of object number + 1 (0: background) and the kept object numbers."""
    snr = (stamps / sigmas[None, :, None, None]).max(axis=1)  # (n, H, W): best band
    if len(snr) == 0:
        return np.zeros(stamps.shape[-2:], np.int16), np.zeros(0, int)
    owner = snr.argmax(axis=0)
    above = snr.max(axis=0) > mask_sigma
    ids = np.where(above, owner + 1, 0)
    areas = np.bincount(ids.ravel(), minlength=len(snr) + 1)[1:]
    kept = np.flatnonzero(areas >= min_area)
    ids[~np.isin(ids, kept + 1)] = 0
    return ids.astype(np.int16), kept


def boxes_of(ids: np.ndarray, numbers) -> np.ndarray:
    """(n, 4) x0, y0, x1, y1 (exclusive) of the pixels carrying each id."""
    out = np.zeros((len(numbers), 4), np.float32)
    for k, number in enumerate(numbers):
        rows, cols = np.nonzero(ids == number)
        out[k] = cols.min(), rows.min(), cols.max() + 1, rows.max() + 1
    return out


def simulate_field(cfg: dict, seed: int, index: int):
    """One field: (image, instance map with 1..n ids, truth table of its n kept objects)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 13, index]))
    field, stamps, _, objects, sigmas = render_field(cfg, rng)
    ids, kept = instance_map(stamps, sigmas, cfg["mask_sigma"], cfg["min_area"])
    renumbered = np.zeros(len(objects) + 1, np.int16)
    renumbered[kept + 1] = np.arange(1, len(kept) + 1)
    ids = renumbered[ids]
    truth = objects.iloc[kept].reset_index(drop=True)
    truth.insert(0, "object", np.arange(1, len(kept) + 1))
    truth.insert(0, "field", index)
    truth[["x0", "y0", "x1", "y1"]] = boxes_of(ids, truth["object"])
    truth["area"] = np.bincount(ids.ravel(), minlength=len(kept) + 1)[1:]
    return field, ids, truth


def _simulate_chunk(args):
    indices, cfg, seed = args
    return [simulate_field(cfg, seed, i) for i in indices]


def simulate_fields(n_fields: int, simulation: dict | None, seed: int, workers: int = 1):
    """(images (N, C, H, W) float32, instance maps (N, H, W) int16, objects table, fields catalog)."""
    cfg = settings(simulation)
    chunks = [(list(range(i, min(i + 16, n_fields))), cfg, seed) for i in range(0, n_fields, 16)]
    if workers > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = [r for chunk in pool.map(_simulate_chunk, chunks) for r in chunk]
    else:
        results = [r for chunk in chunks for r in _simulate_chunk(chunk)]
    images = np.stack([r[0] for r in results]).astype(np.float32)
    masks = np.stack([r[1] for r in results]).astype(np.int16)
    objects = pd.concat([r[2] for r in results], ignore_index=True)
    objects["class_name"] = [CLASS_NAMES[c - 1] for c in objects["class"]]
    objects["neighbour_distance"] = neighbour_distances(objects)
    counts = objects.groupby("field")["class"].value_counts().unstack(fill_value=0).reindex(range(n_fields), fill_value=0)
    catalog = pd.DataFrame({
        "index": np.arange(n_fields),
        "label": 0,  # one stratum: every field is a mix of stars and galaxies
        "class_name": "field",
        "n_stars": counts.get(1, pd.Series(0, index=counts.index)).to_numpy(),
        "n_galaxies": counts.get(2, pd.Series(0, index=counts.index)).to_numpy(),
        "psf_fwhm": [r[2]["psf_fwhm"].iloc[0] if len(r[2]) else np.nan for r in results],
    })
    return images, masks, objects, catalog


def neighbour_distances(objects: pd.DataFrame) -> np.ndarray:
    """Distance (pixels) from each true object to the nearest other true object of its field."""
    out = np.full(len(objects), np.inf)
    for rows in objects.groupby("field").groups.values():
        xy = objects.loc[rows, ["x", "y"]].to_numpy()
        if len(xy) > 1:
            d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
            np.fill_diagonal(d, np.inf)
            out[np.asarray(rows)] = d.min(axis=1)
    return out


def write_fields_dataset(out_dir, name: str, dataset_cfg: dict, seed: int, workers: int = 1) -> dict:
    """images.npy, masks.npy, catalog.parquet (one row per field), objects.parquet, card."""
    from pathlib import Path

    from deepsky.data import storage
    from deepsky.data.cards import write_card

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = settings(dataset_cfg.get("simulation"))
    images, masks, objects, catalog = simulate_fields(int(dataset_cfg["n_per_class"]), cfg, seed, workers)
    storage.save_images(out_dir / storage.IMAGES, images)
    np.save(out_dir / MASKS, masks)
    storage.save_table(out_dir / OBJECTS, objects)
    storage.save_table(out_dir / storage.CATALOG, catalog)
    return write_card(
        out_dir, name=name, source="simulate_fields",
        description=dataset_cfg.get("description", "GalSim fields of stars and galaxies with instance masks"),
        class_names=["field"], catalog=catalog, images_shape=images.shape, bands=list(cfg["bands"]),
        provenance={"simulator": "deepsky.data.detection_fields (GalSim)", "seed": seed, "simulation": cfg,
                    "object_classes": list(CLASS_NAMES), "n_objects": len(objects)},
    )


MASKS = "masks.npy"
OBJECTS = "objects.parquet"
